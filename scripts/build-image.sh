#!/usr/bin/env bash
# Builds the interpose container image with podman from the repository's Dockerfile.
#
#   bash scripts/build-image.sh [TAG]          # default TAG: localhost/interpose:dev
#
# Base images: BUILD_BASE and RUNTIME_BASE when set (e.g. node:20-bookworm and
# node:20-bookworm-slim, the Dockerfile's defaults, where Docker Hub is reachable); otherwise
# local ones from Debian's archive and this machine's Node (scripts/build-base-images.sh).
# Prints the build time, the image size and interpose's own share of it.
#
# Podman as root here: runc (crun lacks this kernel's cgroup v1 mode), host networking for the
# build's apt-get and npm ci (no CNI bridge rules in the host's netfilter tables), ulimits
# within the sandbox's hard limits, and the host's npm cache mounted for npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-localhost/interpose:dev}
start=$SECONDS
if [ -z "${BUILD_BASE:-}" ] || [ -z "${RUNTIME_BASE:-}" ]; then
  while IFS='=' read -r name value; do
    case "$name" in BUILD_BASE | RUNTIME_BASE) declare "$name=$value" ;; esac
  done < <(bash scripts/build-base-images.sh)
fi
bases_done=$SECONDS

podman=(podman --runtime runc)
limits=(--ulimit nofile=16384:16384 --ulimit nproc=4096:4096)
npm_cache=$(npm config get cache)
mkdir -p "$npm_cache"

"${podman[@]}" build --network host "${limits[@]}" --volume "$npm_cache:/root/.npm" \
  --build-arg BUILD_BASE="$BUILD_BASE" --build-arg RUNTIME_BASE="$RUNTIME_BASE" \
  --tag "$tag" . >&2
built=$SECONDS

size=$(podman image inspect --format '{{.Size}}' "$tag")
own=$("${podman[@]}" run --rm --network none "${limits[@]}" --entrypoint du "$tag" -sb /opt/interpose | cut -f1)
# shellcheck disable=SC2016 # expanded by the image's shell, not this one
node=$("${podman[@]}" run --rm --network none "${limits[@]}" --entrypoint sh "$tag" -c 'du -bL "$(command -v node)"' | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "build-image: $tag built in $((built - start)) s (base images $((bases_done - start)) s, podman build $((built - bases_done)) s)"
echo "build-image: image $(mib "$size"); interpose itself (/opt/interpose: dist, production node_modules, addon) $(mib "$own"); node binary $(mib "$node")"
