#!/usr/bin/env bash
# The pallet's unit, randomized and benchmark tests (mock runtime) and the runtime's own tests.
# --workspace on purpose: the same feature set as the runtime build, so nothing is rebuilt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/.."
cargo test --locked --workspace
