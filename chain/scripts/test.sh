#!/usr/bin/env bash
# The pallet's unit, randomized and benchmark tests (mock runtime) and the runtime's own tests,
# then the native genesis writer that tests/chain compares the wasm-written genesis with.
# --workspace on purpose: the same feature set as the runtime build, so nothing is rebuilt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/.."
cargo test --locked --workspace
cargo build --locked -p gridlease-runtime --bin gridlease-chain-spec
