#!/usr/bin/env bash
# Swagger UI (/docs) and ReDoc (/redoc) for the customer API, from the npm registry, once per
# version: each package named in services/customer_api/console/web-assets.lock is packed by npm
# (the tarball alone, no dependencies, no install scripts), checked against the integrity pinned
# there, and the files the API serves are unpacked into
#   ${GRIDLEASE_CACHE:-~/.cache/gridlease}/web-assets/NAME-VERSION/
# The API starts without them (/docs then says to run this script); nothing is fetched at run time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$root/services/customer_api/console/web-assets.lock"
cache="${GRIDLEASE_CACHE:-$HOME/.cache/gridlease}/web-assets"
mkdir -p "$cache"

while read -r name version integrity files; do
  case "$name" in ''|'#'*) continue ;; esac
  dest="$cache/$name-$version"
  [ -f "$dest/.complete" ] && continue
  echo "==> npm: $name@$version into $dest"
  work="$(mktemp -d "$cache/.fetch.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent --loglevel=error "$name@$version" >/dev/null)
  tarball="$(ls "$work"/*.tgz)"
  got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then
    echo "$name@$version: integrity $got, expected $integrity (web-assets.lock)" >&2
    exit 1
  fi
  mkdir -p "$work/out"
  # shellcheck disable=SC2086 # one word per file
  tar -xzf "$tarball" -C "$work/out" --strip-components=1 $(printf 'package/%s ' $files)
  touch "$work/out/.complete"
  rm -rf "$dest" && mv "$work/out" "$dest"
  rm -rf "$work"
  trap - EXIT
done < "$lock"
