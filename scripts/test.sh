#!/usr/bin/env bash
# The whole test suite, as `./gridlease test` and CI run it. Prints the time of every phase.
#   ./gridlease test            everything
#   ./gridlease test -k NAME    passes extra arguments to pytest
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
t_start=$SECONDS

phase "python environment" ensure_python_env
# gcc: the NVML stand-in; podman, runc, debootstrap, openssh-client: real containers with SSH.
phase "system packages" bash scripts/system-deps.sh gcc podman runc debootstrap openssh-client curl
phase "chain toolchain" bash chain/scripts/setup-toolchain.sh
phase "chain build (runtime, wasm, chain spec)" bash chain/scripts/build.sh
phase "pallet tests (cargo test)" bash chain/scripts/test.sh
phase "lint (ruff)" .venv/bin/ruff check .
phase "types (mypy --strict services/)" .venv/bin/mypy

set +e
phase "python tests (pytest)" .venv/bin/pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test; that is not a failure of the suite.
if [ "$rc" -eq 5 ]; then rc=0; fi
echo "total: $((SECONDS - t_start)) s"
exit "$rc"
