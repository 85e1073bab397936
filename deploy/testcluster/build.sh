#!/usr/bin/env bash
# Builds the test cluster's binaries from Go modules (no binary downloads):
#   kube-apiserver, kube-scheduler, kube-controller-manager,
#   kubelet, kube-proxy                                               (k8s/: k8s.io/kubernetes)
#   etcd                                                              (etcd/: etcdmain.Main)
#   kwok, and its stage configs                                       (kwok/: sigs.k8s.io/kwok)
#   coredns, with the plugins the cluster's Corefile uses           (coredns/: coremain.Run)
# at the versions of versions.env, into ~/.cache/gridlease/k8s/<k8s-version>/bin (override the
# root with GRIDLEASE_CACHE). A stamp keyed by the inputs (versions.env, go.mod/go.sum, main.go)
# makes a second run with a warm cache take well under a second. Go's module and build caches are
# in <cache>/go so they survive between clones. Every compile runs under `nice -n 19`.
# Cold on 2 cores: ~1 GB of modules and tens of minutes (see README.md for the measured figures).
#   deploy/testcluster/build.sh          build what is missing; prints the bin folder last
#   deploy/testcluster/build.sh --check  exit 0 if the cache is warm, 1 if a build is needed
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${GRIDLEASE_CACHE:-$HOME/.cache/gridlease}"
out="$cache/k8s/$K8S_VERSION"
bin="$out/bin"
stamp="$out/.stamp"
binaries=(etcd kwok kube-apiserver kube-scheduler kube-controller-manager kubelet kube-proxy coredns)

key="$(cat "$here/versions.env" "$here"/*/go.mod "$here"/*/go.sum "$here/etcd/main.go" "$here/coredns/main.go" | sha256sum | cut -d' ' -f1)"
warm() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || return 1
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
  [ -d "$out/kwok-stage" ]
}
if [ "${1:-}" = "--check" ]; then warm; exit; fi
if warm; then
  echo "test cluster binaries: cached ($K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, coredns $COREDNS_VERSION)"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build"
export GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$bin" "$GOMODCACHE" "$GOCACHE"
rm -f "$stamp"
echo "building the test cluster: kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, coredns $COREDNS_VERSION"
echo "  go: $(go version); output: $bin"

t_all=$SECONDS
step() {  # step NAME CMD...: runs CMD (in a subshell), prints its time
  local name="$1"; shift
  local t0=$SECONDS
  echo "--> $name"
  ( "$@" )
  echo "<-- $name: $((SECONDS - t0)) s"
}

# `/version` must report the real version (a build from modules otherwise says v0.0.0-master).
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
build_date="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p')"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

k8s_download() { cd "$here/k8s" && go list -deps tool >/dev/null; }
k8s_build() {
  cd "$here/k8s" && nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kube-controller-manager
}
node_build() {
  cd "$here/k8s" && nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
}
etcd_build() {
  cd "$here/etcd" && go list -deps . >/dev/null \
    && nice -n 19 go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .
}
kwok_build() {
  cd "$here/kwok" && go list -deps tool >/dev/null \
    && nice -n 19 go build -trimpath -ldflags "-s -w" -o "$bin/kwok" sigs.k8s.io/kwok/cmd/kwok
  local dir; dir="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  rm -rf "$out/kwok-stage" && cp -r "$dir/kustomize/stage" "$out/kwok-stage" && chmod -R u+w "$out/kwok-stage"
}

coredns_build() {
  cd "$here/coredns" && go list -deps . >/dev/null \
    && nice -n 19 go build -trimpath -ldflags "-s -w" -o "$bin/coredns" .
}

step "etcd $ETCD_VERSION (download + build)" etcd_build
step "kwok $KWOK_VERSION (download + build, stage configs)" kwok_build
step "kubernetes $K8S_VERSION modules (download)" k8s_download
step "kube-apiserver, kube-scheduler, kube-controller-manager (build)" k8s_build
step "kubelet, kube-proxy (build)" node_build
step "coredns $COREDNS_VERSION (download + build)" coredns_build

"$bin/kube-apiserver" --version | grep -qx "Kubernetes $K8S_VERSION" \
  || { echo "kube-apiserver reports $("$bin/kube-apiserver" --version), not $K8S_VERSION" >&2; exit 1; }
echo "$key" > "$stamp"
echo "built in $((SECONDS - t_all)) s; binaries $(du -sh "$bin" | cut -f1), go caches $(du -sh "$cache/go" | cut -f1)"
echo "$bin"
