#!/usr/bin/env bash
# Builds the runtime (native + wasm) and the chain-spec writer, then writes the dev chain spec.
# Everything lands in the cache outside the clone, so a second run takes seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/.."
t0=$SECONDS
echo "==> cargo build: runtime (native and wasm) and the chain-spec writer (target: $CARGO_TARGET_DIR)"
cargo build --locked -p gridlease-runtime --bin gridlease-chain-spec
echo "<== chain build: $((SECONDS - t0)) s"
spec_dir="$GRIDLEASE_CACHE/devchain"
mkdir -p "$spec_dir"
bin="$CARGO_TARGET_DIR/debug/gridlease-chain-spec"
if [ ! -f "$spec_dir/gridlease-dev.json" ] || [ "$bin" -nt "$spec_dir/gridlease-dev.json" ]; then
  "$bin" "$spec_dir/gridlease-dev.json.tmp" && mv "$spec_dir/gridlease-dev.json.tmp" "$spec_dir/gridlease-dev.json"
  echo "==> wrote $spec_dir/gridlease-dev.json"
fi
