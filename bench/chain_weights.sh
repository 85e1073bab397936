#!/usr/bin/env bash
# Chain benchmark: the pallet's weights next to Balances::transfer_keep_alive, and claim/heartbeat
# time with 10 vs 10,000 active leases. `--write` regenerates pallets/gpu-rental/src/weights.rs.
exec "$(dirname "$0")/../chain/scripts/bench-weights" "$@"
