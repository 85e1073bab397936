#!/usr/bin/env bash
# Builds the runtime's wasm only (no native runtime) and writes the dev chain spec from it: all
# the dev chain needs. About 10 minutes cold on 2 cores (the wasm's ~300 crates; the cargo line
# shows the host-side crates, the progress lines below the wasm's), seconds warm. Everything lands
# in the cache outside the clone. The native runtime is built by the pallet tests (test.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/.."
t0=$SECONDS
wbuild="$CARGO_TARGET_DIR/debug/wbuild/gridlease-runtime"
echo "==> cargo build: the runtime's wasm (target: $CARGO_TARGET_DIR)"
# The wasm is built by a cargo inside the build script, whose output cargo hides: report how many
# of the wasm's crates are compiled (of the count the last build had, else this checkout's 158),
# and the latest, every 20 s while it runs.
deps="$wbuild/target/wasm32v1-none/release/deps"
(
  total=$(cat "$wbuild/.crate-count" 2>/dev/null || echo 158)
  while sleep 20; do
    latest=$(ls -t "$deps"/*.rmeta 2>/dev/null | head -1 | sed 's|.*/lib||; s|-[0-9a-f]*\.rmeta$||')
    [ -n "$latest" ] && echo "    wasm: $(ls "$deps"/*.rmeta | wc -l) of about $total crates compiled, latest $latest ($((SECONDS - t0)) s)"
  done
) &
watcher=$!
trap 'kill $watcher 2>/dev/null || true' EXIT
cargo build --locked -p gridlease-runtime-wasm
kill $watcher 2>/dev/null || true
ls "$deps"/*.rmeta | wc -l > "$wbuild/.crate-count"
echo "<== chain build: $((SECONDS - t0)) s"
bash "$here/write-chain-spec.sh" "$wbuild/gridlease_runtime.wasm"
