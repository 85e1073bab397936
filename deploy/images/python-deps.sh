#!/usr/bin/env bash
# The Python services' dependencies for their images: pyproject's [project] dependencies plus
# PostgreSQL's driver (the API's optional database), at exactly the versions the tests run with
# (.venv's), installed with pip --target into a folder of the cache keyed by both. Prints it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pip="$root/.venv/bin/pip"
[ -x "$pip" ] || { echo "no .venv: run ./gridlease test or ./gridlease dev up first" >&2; exit 1; }
cache="${GRIDLEASE_CACHE:-$HOME/.cache/gridlease}/images"
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$pip" freeze --exclude-editable | grep -v -i '^gridlease' > "$work/constraints.txt"
"$root/.venv/bin/python" - "$root/pyproject.toml" > "$work/requirements.txt" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join([*project["dependencies"], "psycopg[binary]>=3.2"]))
PY
# Bump when what is removed below changes (part of the cache key).
slim=1
key="$(cat "$work/requirements.txt" "$work/constraints.txt" <(echo "slim=$slim") | sha256sum | cut -c1-16)"
dest="$cache/python-deps-$key"
if [ ! -d "$dest" ]; then
  echo "==> pip install --target $dest (the services' dependencies, once)" >&2
  rm -rf "$dest.partial"
  "$pip" install --quiet --disable-pip-version-check --target "$dest.partial" \
    --requirement "$work/requirements.txt" --constraint "$work/constraints.txt" >&2
  # The kubernetes client ships an asyncio twin of itself (kubernetes/aio: 68 MB of 126, plus
  # its bytecode), which nothing imports: `import kubernetes` and our code use the sync client.
  rm -rf "$dest.partial/kubernetes/aio"
  mv "$dest.partial" "$dest"
fi
echo "$dest"
