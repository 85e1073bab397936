#!/usr/bin/env bash
# Builds every Gridlease image with Podman, tagged with the Helm chart's appVersion:
#   localhost/gridlease-app       the Python services' common layer (deploy/images/app.Containerfile)
#   localhost/gridlease-api       customer API   (services/customer_api/Containerfile)
#   localhost/gridlease-seed      seed node      (services/seed/Containerfile)
#   localhost/gridlease-node      GPU node agent (services/gpu_node/Containerfile)
#   localhost/gridlease-chain-node  the Substrate node (chain/node/Containerfile, node-image.sh)
#   localhost/gridlease-sshd      the lease workload's SSH image (services/gpu_node/runtime/images.py)
# No registry is reachable: bases are Debian rootfs made here (base-image.sh). Cold: two
# debootstraps, the Python dependencies and the node's build; warm: seconds.
#   deploy/images/build-images.sh [--python-only]     (--python-only: app, api, seed, node)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/deploy/images"
version="$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$root/deploy/helm/gridlease/Chart.yaml")"
podman=(podman --runtime runc --cgroup-manager cgroupfs)

base="$(bash "$here/base-image.sh" python)"
deps="$(bash "$here/python-deps.sh")"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/app" "$context/data" "$context/nvml-sim"
cp -a "$deps" "$context/python"
# The SIMULATED NVML for clusters without NVIDIA hardware (gpuNode.simulateGpus): compiled here,
# as the GPU node would at run time, because the image has no compiler.
sim="$("$root/.venv/bin/python" -c '
from services.gpu_node.hardware.simulation import build_sim_library
print(build_sim_library().parent)')"
cp -a "$sim" "$context/nvml-sim/"
# Swagger UI and ReDoc, so /docs and /redoc work offline in the cluster too (the API reads them
# from $GRIDLEASE_CACHE/web-assets, which the image sets).
bash "$root/scripts/web-assets.sh" >&2
mkdir -p "$context/cache"
cp -a "${GRIDLEASE_CACHE:-$HOME/.cache/gridlease}/web-assets" "$context/cache/"
# The services package without tests' leftovers or caches (what `python -m services.X` runs).
tar -C "$root" --exclude='__pycache__' --exclude='*.pyc' -cf - services | tar -C "$context/app" -xf -
app="localhost/gridlease-app:$version"
"${podman[@]}" build --quiet --build-arg "BASE=$base" -f "$here/app.Containerfile" -t "$app" "$context" >/dev/null
echo "$app"
empty="$(mktemp -d)"
trap 'rm -rf "$context" "$empty"' EXIT
for component in api:customer_api seed:seed node:gpu_node; do
  name="localhost/gridlease-${component%%:*}:$version"
  "${podman[@]}" build --quiet --build-arg "APP=$app" \
    -f "$root/services/${component#*:}/Containerfile" -t "$name" "$empty" >/dev/null
  echo "$name"
done
[ "${1:-}" = --python-only ] && exit 0
bash "$root/chain/scripts/node-image.sh"
"$root/.venv/bin/python" -c '
from services.gpu_node.runtime.images import ensure_sshd_image
from services.gpu_node.runtime.podman_cli import PodmanCli
print(ensure_sshd_image(PodmanCli()))'
