#!/usr/bin/env bash
# Builds the node and the other native binaries (gridlease-node, gridlease-chain-spec,
# gridlease-bench-scale) into the cache outside the clone: $CARGO_TARGET_DIR/debug/. Cold on
# 2 cores this is the longest build of the project (about 1,000 crates); warm, seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
bash "$here/setup-toolchain.sh" >&2
cd "$here/.."
t0=$SECONDS
echo "==> cargo build: the node and native binaries (target: $CARGO_TARGET_DIR)" >&2
cargo build --locked --workspace --bins
echo "<== node build: $((SECONDS - t0)) s" >&2
