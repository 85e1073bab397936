#!/usr/bin/env bash
# The pallet's unit, randomized and benchmark tests (mock runtime) and the runtime's own tests,
# then every binary: the node (tests/chain_node runs it), the native genesis writer that
# tests/chain compares the wasm-written genesis with, and the weight runner.
# --workspace in both on purpose: cargo unifies features over the packages it builds, so one
# feature set (the node's) means the runtime's 390 crates are compiled once, not once per set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/.."
cargo test --locked --workspace
bash "$here/build-node.sh"
