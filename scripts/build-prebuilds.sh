#!/usr/bin/env bash
# Builds the prebuilt native addons the npm package ships (npm runs this as "prepack"):
# native/prebuilds/linux-<arch>/interpose_native.napi.glibc.node, the layout node-gyp-build
# looks up at run time (src/native.ts), and next to it interpose-cni-shim, the static CNI shim
# `interpose cni install` copies into the CNI bin dir. Node-API 8 makes one build fit every supported Node.
#
# linux-x64 and linux-arm64 (glibc) are built on an x86-64 Debian host; arm64 is cross-compiled
# with Debian's g++-aarch64-linux-gnu (scripts/install-system-deps.sh installs it). An arch
# whose compiler is missing is skipped with a message, and the package then builds that one
# from source with cmake-js when installed (scripts/build-native-if-needed.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

cmake_js=node_modules/.bin/cmake-js
if [ ! -x "$cmake_js" ]; then
  echo "build-prebuilds: $cmake_js is missing: run \`npm ci\` first (cmake-js is a dev dependency)" >&2
  exit 1
fi

case "$(uname -m)" in
  x86_64) host_arch=x64 ;;
  aarch64) host_arch=arm64 ;;
  *) host_arch=$(uname -m) ;;
esac

built=()
build() { # build ARCH GNU_TRIPLET: a cross build when ARCH is not the host's
  local arch=$1 triplet=$2 out=native/build/prebuild-$1 cross=()
  if [ "$arch" = "$host_arch" ]; then
    # The host's build is `npm run build:native`'s, same options, same directory: an addon
    # already built there (npm ci's "prepare" built it) is reused, not compiled again.
    out=native/build
  else
    if ! command -v "$triplet-g++" >/dev/null; then
      echo "build-prebuilds: skipping linux-$arch: no $triplet-g++ (apt-get install g++-$triplet); installs on linux-$arch build from source" >&2
      return 0
    fi
    cross=(--arch "$arch" --CDCMAKE_SYSTEM_NAME=Linux --CDCMAKE_SYSTEM_PROCESSOR="${triplet%%-*}"
      --CDCMAKE_CXX_COMPILER="$triplet-g++")
  fi
  "$cmake_js" compile --log-level warn --directory native --out "$out" "${cross[@]}" >/dev/null
  local dest=native/prebuilds/linux-$arch
  rm -rf "$dest" && mkdir -p "$dest"
  # Stripped: the symbols would triple the size and the package carries the sources.
  local strip=strip
  [ "$arch" != "$host_arch" ] && strip=$triplet-strip
  "$strip" --strip-unneeded -o "$dest/interpose_native.napi.glibc.node" "$out/Release/interpose_native.node"
  # The CNI shim (native/src/cni_shim/), where src/native-loader.ts nativeExecutablePath finds it.
  "$strip" --strip-unneeded -o "$dest/interpose-cni-shim" "$out/Release/interpose-cni-shim"
  built+=("linux-$arch")
}

build x64 x86_64-linux-gnu
build arm64 aarch64-linux-gnu
echo "build-prebuilds: built ${built[*]:-nothing} in native/prebuilds"
