#!/usr/bin/env bash
# Builds the two base images the Dockerfile takes as build arguments, from Debian's archive and
# the Node already on this machine, for hosts that cannot pull node:20-bookworm(-slim) from
# Docker Hub (CI):
#
#   runtime: Debian 12 minbase (mmdebstrap) + this machine's node binary at /usr/bin/node
#   build:   the same + this machine's npm at /usr/lib/node_modules/npm
#
# The node binary needs only libc, libstdc++ and libgcc_s, which minbase has. Both are tagged
# with a hash of this script and the Node/npm versions, and are reused when already present.
# Prints the two tags as `RUNTIME_BASE=…` and `BUILD_BASE=…` lines on stdout (progress on stderr).
#
# Needs root, podman and mmdebstrap (scripts/install-system-deps.sh). DEBIAN_MIRROR overrides
# the archive (default http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")
node_version=$(node --version)
npm_version=$(npm --version)
case "$node_version" in
  v20.*) ;;
  *) echo "build-base-images: node $node_version found; the image is meant for Node 20" >&2; exit 1 ;;
esac

key=$( { cat "$0"; echo "$mirror $suite $node_version $npm_version"; } | sha256sum | cut -c1-12)
runtime=localhost/interpose-base/runtime:node${node_version#v}-$suite-$key
build=localhost/interpose-base/build:node${node_version#v}-$suite-$key

if podman image exists "$runtime" && podman image exists "$build"; then
  echo "build-base-images: reusing $runtime and $build" >&2
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  start=$SECONDS
  # force-unsafe-io: no fsync per unpacked file (a throw-away tree; several times faster).
  # Docs, man pages and locales are left out, the copyright files kept. The system's PATH:
  # those filters run mmtarfilter (`#!/usr/bin/env python3`) once per package, and a version
  # manager's python3 shim first in PATH costs seconds a call (pyenv's, under load: the
  # bootstrap took 267 s with it, 161 s without).
  PATH=/usr/sbin:/usr/bin:/sbin:/bin mmdebstrap --quiet --variant=minbase \
    --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='Acquire::Languages "none"' \
    "$suite" "$work/rootfs" "$mirror" >&2
  echo "build-base-images: mmdebstrap $suite minbase took $((SECONDS - start)) s" >&2

  rm -rf "$work/rootfs"/var/cache/apt/* "$work/rootfs"/var/lib/apt/lists/*
  install -m 0755 "$node_bin" "$work/rootfs/usr/bin/node"
  tar -C "$work/rootfs" -c . | podman import --change 'CMD ["node"]' - "$runtime" >/dev/null

  mkdir -p "$work/rootfs/usr/lib/node_modules"
  cp -a "$npm_dir" "$work/rootfs/usr/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/bin/npx"
  tar -C "$work/rootfs" -c . | podman import --change 'CMD ["node"]' - "$build" >/dev/null
  echo "build-base-images: built $runtime and $build in $((SECONDS - start)) s" >&2
fi

echo "RUNTIME_BASE=$runtime"
echo "BUILD_BASE=$build"
