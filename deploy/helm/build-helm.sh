#!/usr/bin/env bash
# Builds Helm from its Go module (no binary download) into ~/.cache/gridlease/helm/<version>/helm
# (override the root with GRIDLEASE_CACHE), keyed by version: a second run with a warm cache takes
# well under a second. Go's module and build caches are shared with the test cluster's build
# (<cache>/go). The compile runs under `nice -n 19`.
#   deploy/helm/build-helm.sh          build if missing; prints the binary's path last
#   deploy/helm/build-helm.sh --check  exit 0 if the cache is warm, 1 if a build is needed
# HELM_VERSION (default below) picks another version the module proxy serves.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
cache="${GRIDLEASE_CACHE:-$HOME/.cache/gridlease}"
out="$cache/helm/$HELM_VERSION"
helm="$out/helm"

warm() { [ -x "$helm" ] && [ "$("$helm" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; }
if [ "${1:-}" = "--check" ]; then warm; exit; fi
if warm; then
  echo "helm: cached ($HELM_VERSION)"
  echo "$helm"
  exit 0
fi

command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build"
export GOFLAGS="-buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$out"
mkdir -p "$out" "$GOMODCACHE" "$GOCACHE"
echo "building helm $HELM_VERSION from helm.sh/helm/v3 (go: $(go version)); output: $out"
t0=$SECONDS
# `helm version` must report the real version (a plain build says v3.x-dev or similar).
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
nice -n 19 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
warm || { echo "built helm reports '$("$helm" version --template '{{.Version}}')', not $HELM_VERSION" >&2; exit 1; }
echo "built in $((SECONDS - t0)) s; binary $(du -sh "$helm" | cut -f1), go caches $(du -sh "$cache/go" | cut -f1)"
echo "$helm"
