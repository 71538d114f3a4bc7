#!/usr/bin/env bash
# Installs (Debian) and builds (Go module proxy) what a real Kubernetes node needs next to the local
# control plane (hack/localcluster, real-node mode), and prints `name path` for every binary:
#   apt         containerd, runc, CNI plugins, busybox-static, iptables/nftables, iproute2, skopeo,
#               gcc (pause), mmdebstrap (the operator image)             only what is missing
#   kubernetes  kubelet, kube-proxy: hack/build-control-plane.sh node (the control plane's wrapper
#               module, so they share its Go build cache)
#   pause       the pod sandbox: build/pause/linux/pause.c of the same k8s.io/kubernetes module, gcc -static
#   coredns     cluster DNS
#   local-path  rancher's local-path-provisioner (PersistentVolumeClaims)
#   kaniko      Kaniko's executor (wrapper module: the proxy refuses kaniko's version list, which
#               `go install pkg@version` reads)
#   registry    CNCF distribution 3.x: hack/build-tools.sh registry
# Everything lands in ~/.cache/dockyard/node/<name>-<version>/ ($DOCKYARD_CACHE overrides the
# cache); a present binary skips its build. Each build's wall time is appended to
# ~/.cache/dockyard/node/build-times.txt.
#   build-node.sh              everything
#   build-node.sh coredns ...  only these items (apt kubernetes pause coredns local-path kaniko registry)
#   SKIP_APT=1                 do not install Debian packages
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache="${DOCKYARD_CACHE:-$HOME/.cache/dockyard}"
node="$cache/node"
mkdir -p "$node"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "[build-node $(date +%H:%M:%S)] $*" >&2; }

APT_PACKAGES=(containerd runc containernetworking-plugins busybox-static iptables nftables iproute2 conntrack
  skopeo openssl ca-certificates gcc libc6-dev mmdebstrap)

timed() {  # label command...: run it and record its wall time
  local label=$1 t0 rc=0
  shift
  t0=$(date +%s)
  "$@" || rc=$?
  if [ "$rc" = 0 ]; then
    echo "$(date -u +%FT%TZ) $label $(($(date +%s) - t0))s" >>"$node/build-times.txt"
    log "$label built in $(($(date +%s) - t0))s"
  fi
  return "$rc"
}

need_go() {
  command -v go >/dev/null 2>&1 || {
    echo "error: Go is not installed ($1 is built from the Go module proxy; install Go >= 1.24)." >&2
    exit 3
  }
}

apt_packages() {
  [ "${SKIP_APT:-0}" = 1 ] && return 0
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then  # the real node needs root anyway; its tests skip without it
    log "not root: not installing ${missing[*]} (the real node needs them, and root)"
    return 0
  fi
  log "apt-get install ${missing[*]}"
  apt-get update -qq >&2
  # policy-rc.d: packages must not start services (containerd) on hosts that have an init system.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
    [ "$created" = 1 ] && rm -f "$policy"
    return 1
  }
  [ "$created" = 1 ] && rm -f "$policy"
  return 0
}

# A throw-away main module that requires `module@version` and lists `package` as a tool, then
# `go build`: works where `go install package@version` does not (replace directives, or a proxy
# that refuses the module's version list).
go_wrapper() {  # out module version package ldflags
  local out=$1 module=$2 version=$3 package=$4 ldflags=$5 work rc=0
  work=$(mktemp -d)
  printf 'module dockyard.local/nodebuild\n\ngo 1.24\n\nrequire %s %s\n\ntool %s\n' \
    "$module" "$version" "$package" >"$work/go.mod"
  (cd "$work" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w $ldflags" -o "$out.partial" "$package") || rc=$?
  rm -rf "$work"
  [ "$rc" = 0 ] && mv "$out.partial" "$out"
  return "$rc"
}

go_install() {  # out package@version ldflags
  local out=$1 gobin rc=0
  gobin=$(mktemp -d)
  GOBIN="$gobin" go install -trimpath -ldflags "-s -w $3" "$2" >&2 || rc=$?
  [ "$rc" = 0 ] && mv "$gobin"/* "$out"
  rm -rf "$gobin"
  return "$rc"
}

# The Kubernetes pause container from the k8s.io/kubernetes module the kubelet is built from:
# reaps zombies, exits on SIGINT/SIGTERM; 0.7 MB static.
build_pause() {  # out
  local dir
  dir=$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -f "$dir/build/pause/linux/pause.c" ] || { echo "error: no build/pause/linux/pause.c in $dir" >&2; return 1; }
  gcc -Os -static -DVERSION="\"${PAUSE_VERSION}\"" -o "$1.partial" "$dir/build/pause/linux/pause.c"
  strip "$1.partial"
  mv "$1.partial" "$1"
}

item() {  # name dir binary builder args...: `builder dir/binary args...` unless present; print `name path`
  local name=$1 dir=$2 binary=$3 builder=$4
  shift 4
  if [ ! -x "$dir/$binary" ]; then
    need_go "$name"
    mkdir -p "$dir"
    log "building $name ($(basename "$dir"))"
    timed "$(basename "$dir")" "$builder" "$dir/$binary" "$@"
  fi
  echo "$name $dir/$binary"
}

build_item() {  # one item: build it unless present, print `name path` for its binaries
  case "$1" in
    apt) apt_packages ;;
    kubernetes)
      if [ ! -x "$node/kubernetes-${KUBERNETES_VERSION}/kubelet" ] || [ ! -x "$node/kubernetes-${KUBERNETES_VERSION}/kube-proxy" ]; then
        bash "$here/build-control-plane.sh" >/dev/null
        timed "kubernetes-${KUBERNETES_VERSION} (kubelet, kube-proxy)" bash "$here/build-control-plane.sh" node >/dev/null
      fi
      echo "kubelet $node/kubernetes-${KUBERNETES_VERSION}/kubelet"
      echo "kube-proxy $node/kubernetes-${KUBERNETES_VERSION}/kube-proxy"
      ;;
    pause) item pause "$node/pause-${PAUSE_VERSION}-k8s-${KUBERNETES_VERSION}" pause build_pause ;;
    coredns) item coredns "$node/coredns-${COREDNS_VERSION}" coredns go_install \
      "github.com/coredns/coredns@${COREDNS_VERSION}" "" ;;
    local-path) item local-path-provisioner "$node/local-path-provisioner-${LOCAL_PATH_VERSION}" \
      local-path-provisioner go_install "github.com/rancher/local-path-provisioner@${LOCAL_PATH_VERSION}" \
      "-X main.VERSION=${LOCAL_PATH_VERSION}" ;;
    kaniko) item kaniko-executor "$node/kaniko-${KANIKO_VERSION}" executor go_wrapper \
      github.com/GoogleContainerTools/kaniko "${KANIKO_VERSION}" github.com/GoogleContainerTools/kaniko/cmd/executor \
      "-X github.com/GoogleContainerTools/kaniko/pkg/version.version=${KANIKO_VERSION}" ;;
    registry)
      if [ ! -x "$cache/tools/registry-${DISTRIBUTION_VERSION}/registry" ]; then
        timed "registry-${DISTRIBUTION_VERSION}" bash "$here/build-tools.sh" registry >/dev/null
      fi
      echo "registry $(bash "$here/build-tools.sh" registry)"
      ;;
  esac
}

ITEMS=(apt kubernetes pause coredns local-path kaniko registry)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${ITEMS[@]}")
for w in "${want[@]}"; do
  case " ${ITEMS[*]} " in
    *" $w "*) ;;
    *) echo "error: unknown item $w (${ITEMS[*]})" >&2; exit 2 ;;
  esac
done
# apt first (pause needs gcc); the builds then run side by side: each is partly downloads and a
# single-threaded link, so together they finish sooner than one after another.
rest=()
for w in "${want[@]}"; do
  if [ "$w" = apt ]; then build_item apt; else rest+=("$w"); fi
done
[ ${#rest[@]} -gt 0 ] || exit 0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pids=()
for w in "${rest[@]}"; do
  build_item "$w" >"$out/$w" &
  pids+=($!)
done
failed=()
for i in "${!rest[@]}"; do
  wait "${pids[$i]}" || failed+=("${rest[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "error: building ${failed[*]} failed (see the output above)" >&2
  exit 1
fi
for w in "${rest[@]}"; do cat "$out/$w"; done
