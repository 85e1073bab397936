#!/usr/bin/env bash
# Builds the node's container image, localhost/gridlease-chain-node:<version> (the node crate's
# version, which the Helm chart's appVersion follows), from chain/node/Containerfile: the node
# built (cached) by build-node.sh on the base image from deploy/images/base-image.sh. Prints the
# image name.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
chain="$here/.."
bash "$here/build-node.sh"
base="$(bash "$chain/../deploy/images/base-image.sh")"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$chain/Cargo.toml" | head -1)"
image="localhost/gridlease-chain-node:$version"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$CARGO_TARGET_DIR/debug/gridlease-node" "$context/"
mkdir "$context/data"
podman --runtime runc --cgroup-manager cgroupfs build --quiet --build-arg "BASE=$base" -f "$chain/node/Containerfile" -t "$image" "$context" >&2
echo "$image"
