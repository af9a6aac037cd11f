#!/usr/bin/env bash
# Builds the chart's own images, iotex-gateway and iotex-injector, from gateway/Dockerfile and
# injector/Dockerfile (build context: the repository root), and optionally pushes them. Nobody publishes
# these images: build them where a Docker engine runs, push them to your registry, and set
# images.gateway.repository / images.injector.repository (staging and production refuse to render without).
#   scripts/build-images.sh [--registry REGISTRY] [--tag TAG] [--push] [--only gateway|injector]
#     --registry  image name prefix (default iotex-toolkit, the names values-testing.yaml uses)
#     --tag       default: the chart's appVersion (k8s/iotex/Chart.yaml), which the chart uses when
#                 images.*.tag is empty
#     --push      docker push each image after building it
# Exits 3, saying so, where no Docker engine answers (e.g. the project's own machines).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'build-images: %s\n' "$*" >&2; }
usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

registry=iotex-toolkit
tag="$(awk -F'"' '/^appVersion:/ {print $2}' "$root/k8s/iotex/Chart.yaml")"
push=0
only=(gateway injector)
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry="${2:?--registry needs a value}"; shift 2 ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --push) push=1; shift ;;
    --only)
      case "${2:-}" in gateway|injector) only=("$2") ;; *) log "--only takes gateway or injector"; exit 2 ;; esac
      shift 2 ;;
    -h|--help) usage ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done
[ -n "$tag" ] || { log "no --tag given and no appVersion in k8s/iotex/Chart.yaml"; exit 2; }
registry="${registry%/}"

if ! command -v docker >/dev/null 2>&1; then
  log "no 'docker' command here: install Docker (engine and CLI) and run this again on that machine"
  exit 3
fi
if ! err="$(docker info --format '{{.ServerVersion}}' 2>&1)"; then
  log "no Docker engine answers here ('docker info': ${err##*$'\n'})."
  log "The images cannot be built on this machine. Run scripts/build-images.sh where a Docker engine runs"
  log "(a workstation or a CI runner with Docker), with --registry <your registry> --push."
  exit 3
fi

for name in "${only[@]}"; do
  image="$registry/iotex-$name:$tag"
  log "building $image from $name/Dockerfile"
  DOCKER_BUILDKIT=1 docker build -f "$root/$name/Dockerfile" -t "$image" "$root"
  if [ "$push" = 1 ]; then
    log "pushing $image"
    docker push "$image"
  fi
done
log "done. Set in your values: images.gateway.repository=$registry/iotex-gateway, images.injector.repository=$registry/iotex-injector (tag $tag)"
