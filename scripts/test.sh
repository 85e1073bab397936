#!/usr/bin/env bash
# The whole test suite, as `./gridlease test` and CI run it. Prints the time of every phase.
#   ./gridlease test            everything
#   ./gridlease test -k NAME    passes extra arguments to pytest
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"
t_start=$SECONDS

phase "python environment" ensure_python_env
# gcc: the NVML stand-in; podman, runc, debootstrap, openssh-client: real containers with SSH;
# containerd, containernetworking-plugins, busybox-static: the Kubernetes test cluster's real node;
# prometheus: Prometheus and promtool (alerts, and the dashboards' queries against the stack);
# chromium, chromium-driver: the web console's browser tests (tests/console, Selenium).
phase "system packages" bash scripts/system-deps.sh gcc podman runc debootstrap openssh-client curl \
  containerd containernetworking-plugins busybox-static prometheus chromium chromium-driver
# Swagger UI and ReDoc for the API's /docs and /redoc, pinned, from the npm registry (cached).
phase "web docs assets (Swagger UI, ReDoc)" bash scripts/web-assets.sh
phase "chain toolchain" bash chain/scripts/setup-toolchain.sh
phase "chain build (wasm only, chain spec from it)" bash chain/scripts/build.sh
# Kubernetes test cluster (tests/k8s): built from Go modules, cached by version in ~/.cache/gridlease/k8s.
phase "kubernetes test cluster (build or cache)" bash deploy/testcluster/build.sh
# Helm (tests/deploy): built from its Go module, cached by version in ~/.cache/gridlease/helm.
phase "helm (build or cache)" bash deploy/helm/build-helm.sh
phase "pallet tests (cargo test; native genesis writer)" bash chain/scripts/test.sh
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
