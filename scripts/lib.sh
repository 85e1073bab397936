# Shared shell helpers for ./gridlease and the scripts: timed phases and the Python environment.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# phase NAME CMD...: runs CMD, printing how long it took (CI reads these lines); returns CMD's
# exit status, so a failing phase fails the caller.
phase() {
  local name="$1"; shift
  local t0=$SECONDS rc=0
  echo "==> $name"
  "$@" || rc=$?
  [ "$rc" -eq 0 ] && echo "<== $name: $((SECONDS - t0)) s" || echo "<== $name: $((SECONDS - t0)) s (exit $rc)"
  return "$rc"
}

# The venv lives in the clone (.venv, ignored); pip's cache is outside it so a fresh clone is quick.
ensure_python_env() {
  local stamp="$root/.venv/.installed"
  if [ ! -x "$root/.venv/bin/python" ]; then
    echo "==> creating Python environment in .venv" >&2
    python3 -m venv "$root/.venv"
  fi
  if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "==> installing gridlease and its dependencies (pip)" >&2
    "$root/.venv/bin/pip" install --quiet --upgrade pip >&2
    "$root/.venv/bin/pip" install --quiet -e "$root[dev]" >&2
    touch "$stamp"
  fi
}
