#!/usr/bin/env bash
# The base image every Gridlease Containerfile starts FROM: a minimal Debian (the suite this
# machine runs, so binaries built here find their glibc), made with debootstrap because no
# registry is reachable, imported into Podman as localhost/gridlease-debian:$suite.
# The rootfs tar is cached in ~/.cache/gridlease/images (about 1.5 min once); later runs only
# import it if Podman lacks the image. Prints the image name.
set -euo pipefail
suite="${GRIDLEASE_BASE_SUITE:-bookworm}"
image="localhost/gridlease-debian:$suite"
cache="${GRIDLEASE_CACHE:-$HOME/.cache/gridlease}/images"
tar="$cache/debian-$suite-minbase.tar"
if podman image exists "$image"; then echo "$image"; exit 0; fi
if [ ! -f "$tar" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/rootfs-XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "==> debootstrap $suite (minbase) into $tmp" >&2
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$tmp/rootfs" http://deb.debian.org/debian >&2
  rm -rf "$tmp/rootfs/var/lib/apt/lists/"* "$tmp/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$tmp/rootfs" --numeric-owner -cf "$tar.partial" .
  mv "$tar.partial" "$tar"
fi
podman import --change 'CMD ["/bin/bash"]' "$tar" "$image" >&2
echo "$image"
