#!/usr/bin/env bash
# Builds test tools from the Go module proxy into ~/.cache/dockyard/tools/<tool>-<version>/ and
# prints each binary's path, one per line; a present binary skips its build.
#   helm      the Helm client (chart tests)                    ~4 min cold on 2 cores
#   registry  CNCF distribution 3.x, the registry:3 default    ~2 min cold
#   conformance  the OCI distribution-spec conformance suite  ~40 s cold
#   promtool  Prometheus' checker (metric names, rules, PromQL)  ~7 min cold on 2 busy cores
#   oras      the ORAS client (artifacts and referrers)          a few minutes cold
# Usage: build-tools.sh [helm] [registry] [conformance] [promtool] [oras]   (no argument: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache="${DOCKYARD_CACHE:-$HOME/.cache/dockyard}/tools"

build() {  # name version package ldflags [build tags]
  local dir="$cache/$1-$2"
  if [ ! -x "$dir/$1" ]; then
    command -v go >/dev/null 2>&1 || { echo "error: Go is not installed ($1 is built from the Go module proxy; install Go >= 1.24)." >&2; exit 3; }
    mkdir -p "$dir"
    echo "[build-tools $(date +%H:%M:%S)] building $1 $2" >&2
    GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$dir" go install -trimpath -tags "${5:-}" -ldflags "-s -w $4" "$3@$2"
  fi
  echo "$dir/$1"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(helm registry conformance promtool oras)
for tool in "${tools[@]}"; do
  case "$tool" in
    helm) build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" ;;
    registry) build registry "$DISTRIBUTION_VERSION" github.com/distribution/distribution/v3/cmd/registry \
      "-X github.com/distribution/distribution/v3/version.version=${DISTRIBUTION_VERSION}" ;;
    conformance) build conformance "$CONFORMANCE_VERSION" github.com/opencontainers/distribution-spec/conformance \
      "-X main.Version=${CONFORMANCE_VERSION}" ;;
    # remove_all_sd: without the service-discovery plugins (every cloud SDK), which the checks never use
    promtool) build promtool "$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/promtool \
      "-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION}" remove_all_sd ;;
    oras) build oras "$ORAS_VERSION" oras.land/oras/cmd/oras "-X oras.land/oras/internal/version.Version=${ORAS_VERSION#v}" ;;
    *) echo "error: unknown tool $tool (helm, registry, conformance, promtool, oras)" >&2; exit 2 ;;
  esac
done
