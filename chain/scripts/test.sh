#!/usr/bin/env bash
# The pallet's unit, randomized and benchmark tests (mock runtime), in the cached target dir.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/.."
cargo test --locked -p pallet-gpu-rental --features runtime-benchmarks
