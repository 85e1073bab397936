#!/usr/bin/env bash
# The base images every Gridlease Containerfile starts FROM: a minimal Debian (the suite this
# machine runs, so binaries built here find their glibc), made with debootstrap because no
# registry is reachable, imported into Podman. Two flavours:
#   base-image.sh           localhost/gridlease-debian:$suite   (minbase + CA certificates)
#   base-image.sh python    localhost/gridlease-python:$suite   (the same + Debian's Python 3)
# The rootfs tar is cached in ~/.cache/gridlease/images (about 1.5 min once per flavour); later
# runs only import it if Podman lacks the image. Prints the image name.
set -euo pipefail
flavour="${1:-debian}"
suite="${GRIDLEASE_BASE_SUITE:-bookworm}"
case "$flavour" in
  debian) packages="ca-certificates" ;;
  # python-is-python3: `python` is the command the services start with (tests, chart, here).
  python) packages="ca-certificates,python3,python-is-python3" ;;
  *) echo "usage: $0 [debian|python]" >&2; exit 2 ;;
esac
image="localhost/gridlease-$flavour:$suite"
cache="${GRIDLEASE_CACHE:-$HOME/.cache/gridlease}/images"
tar="$cache/$flavour-$suite-minbase.tar"
[ "$flavour" = debian ] && tar="$cache/debian-$suite-minbase.tar"  # the name it always had
if podman image exists "$image"; then echo "$image"; exit 0; fi
if [ ! -f "$tar" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/rootfs-XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "==> debootstrap $suite (minbase + $packages) into $tmp" >&2
  debootstrap --variant=minbase --include="$packages" "$suite" "$tmp/rootfs" http://deb.debian.org/debian >&2
  rm -rf "$tmp/rootfs/var/lib/apt/lists/"* "$tmp/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$tmp/rootfs" --numeric-owner -cf "$tar.partial" .
  mv "$tar.partial" "$tar"
fi
podman import --change 'CMD ["/bin/bash"]' "$tar" "$image" >&2
echo "$image"
