#!/bin/sh
# The npm "install" script: keeps the prebuilt addon when one loads on this machine
# (native/prebuilds/<platform>-<arch>, chosen by node-gyp-build as src/native.ts does) and
# otherwise builds the addon from source with cmake-js into native/build. Also the command
# the loader's error names: npm 11 skips dependencies' install scripts unless they are allowed.
#
# cmake-js and node-addon-api are build-time only: a checkout has them as dev dependencies;
# an installed package gets them here, at the versions package.json pins, in native/node_modules,
# removed again after the build.
set -eu
cd "$(dirname "$0")/.."

if node -e "require('node-gyp-build')('native')" 2>/dev/null; then
  exit 0
fi

target=$(node -p 'process.platform + "-" + process.arch')
echo "interpose: no prebuilt native addon loads on $target: building it from source with cmake-js" \
  "(needs cmake >= 3.15, a C++17 compiler and nghttp2's header: Debian's libnghttp2-dev)" >&2

if [ -x node_modules/.bin/cmake-js ] && [ -d node_modules/node-addon-api ]; then
  exec node_modules/.bin/cmake-js compile --directory native --out native/build
fi

dev_version() { node -p "require('./package.json').devDependencies['$1']"; }
trap 'rm -rf native/node_modules' EXIT
npm install --no-save --no-package-lock --no-audit --no-fund --prefix native \
  "cmake-js@$(dev_version cmake-js)" "node-addon-api@$(dev_version node-addon-api)" >&2
native/node_modules/.bin/cmake-js compile --directory native --out native/build
