#!/usr/bin/env bash
# Debian packages the tests use, installed once per machine (CI may start on a bare one).
set -euo pipefail
need=()
for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
[ "${#need[@]}" -eq 0 ] && exit 0
echo "apt-get install ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
