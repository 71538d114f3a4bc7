#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy into ~/.cache/dockyard/<key>/bin:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (one wrapper module),
# etcd and kwok. A stamp file records what was built; a matching stamp skips the build.
# `build-control-plane.sh node` builds kubelet and kube-proxy (a real node) from the same wrapper
# module into ~/.cache/dockyard/node/kubernetes-<version>/ instead, skipping what exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
cache="${DOCKYARD_CACHE:-$HOME/.cache/dockyard}"
bin="$cache/$key/bin"
stamp="$bin/.stamp"
want_stamp="$key $(sha256sum "$0" | cut -c1-16)"
if [ "${1:-}" != node ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "[build-control-plane $(date +%H:%M:%S)] $*" >&2; }

check_proxy() {
  if ! go list -m -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" >/dev/null 2>&1; then
    echo "error: the Go module proxy ($(go env GOPROXY)) did not serve k8s.io/kubernetes@${KUBERNETES_VERSION}; check network access to it." >&2
    exit 3
  fi
}

build_kubernetes() {  # [out_dir cmd...]: default the control plane into $bin
  local out=${1:-$bin} work minor v
  local cmds=("${@:2}")
  [ ${#cmds[@]} -gt 0 ] || cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  v="v0.${KUBERNETES_VERSION#v1.}"
  local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
    endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
    kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver
    sample-cli-plugin sample-controller)
  {
    echo "module dockyard.local/k8sbuild"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
    echo
    echo "tool ("
    echo "	k8s.io/kubernetes/cmd/kube-apiserver"
    echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
    echo "	k8s.io/kubernetes/cmd/kube-scheduler"
    echo "	k8s.io/kubernetes/cmd/kubectl"
    echo "	k8s.io/kubernetes/cmd/kubelet"
    echo "	k8s.io/kubernetes/cmd/kube-proxy"
    echo ")"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m $v"; done
    echo ")"
  } >"$work/go.mod"
  log "resolving Kubernetes ${KUBERNETES_VERSION} modules"
  (cd "$work" && go mod tidy >&2)
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/client-go/pkg/version.gitVersion=${KUBERNETES_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
  for cmd in "${cmds[@]}"; do
    log "building $cmd (a cold build takes several minutes)"
    (cd "$work" && go build -trimpath -ldflags "$ld" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  done
}

build_etcd() {
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  printf 'module dockyard.local/etcdbuild\n\ngo 1.24\n\ntool go.etcd.io/etcd/server/v3\n' >"$work/go.mod"
  log "building etcd ${ETCD_VERSION}"
  (cd "$work" && go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2 && go mod tidy >&2 \
    && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  log "building kwok ${KWOK_VERSION}"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
}

if [ "${1:-}" = node ]; then
  node_bin="$cache/node/kubernetes-${KUBERNETES_VERSION}"
  node_missing=()
  for c in kubelet kube-proxy; do [ -x "$node_bin/$c" ] || node_missing+=("$c"); done
  if [ ${#node_missing[@]} -gt 0 ]; then
    command -v go >/dev/null 2>&1 || { echo "error: Go is not installed (kubelet is built from the Go module proxy; install Go >= 1.24)." >&2; exit 3; }
    check_proxy
    mkdir -p "$node_bin"
    build_kubernetes "$node_bin" "${node_missing[@]}"
  fi
  echo "$node_bin"
  exit 0
fi

missing=()
for c in etcd kwok kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [ -x "$bin/$c" ] || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v go >/dev/null 2>&1 || { echo "error: Go is not installed (the control plane is built from the Go module proxy; install Go >= 1.24)." >&2; exit 3; }
  check_proxy
  [ -x "$bin/etcd" ] || build_etcd
  [ -x "$bin/kwok" ] || build_kwok
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$bin/$c" ] || { build_kubernetes; break; }
  done
fi
echo "$want_stamp" >"$stamp"
log "control plane binaries ready in $bin"
echo "$bin"
