# interpose as an istio-init replacement: the image's entry point is `interpose`, so the
# arguments Istio's sidecar injector writes (`istio-iptables -p 15001 -z 15006 …`) select the
# istio-iptables subcommand, as they do for Istio's own pilot-agent image.
#
#   podman build -t interpose:dev .
#   podman run --rm interpose:dev istio-iptables --dry-run -i 10.96.0.0/12   # print the rules, change nothing
#
# The base images are build arguments so a machine without Docker Hub can bring its own (CI
# builds both from Debian's archive: scripts/build-base-images.sh, docs/init-container.md).
# BUILD_BASE needs node, npm and apt-get; RUNTIME_BASE needs node and apt-get.
ARG BUILD_BASE=node:20-bookworm
ARG RUNTIME_BASE=node:20-bookworm-slim

# Build stage: compiler and cmake for the native addon (cmake-js), tsc for dist/. Ninja, which
# cmake-js picks when present, compiles on every core (make would compile one file at a time).
# libnghttp2-dev: the header of the HTTP/2 fast path (the addon uses the nghttp2 Node carries).
FROM ${BUILD_BASE} AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake g++ make ninja-build libnghttp2-dev >/dev/null \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: "install" and "prepare" would build before the sources are copied in.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY native ./native
COPY src ./src
# Source maps point at src/, which the runtime stage does not carry: dropped, as in the npm package.
RUN npm run build \
 && test -x "$(node -p "require('./package.json').bin.interpose")" \
 && find dist -name '*.map' -delete \
 && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: node plus the netfilter tools interpose drives, no compiler or headers. The
# iptables package brings both iptables-nft and iptables-legacy; interpose picks the one in use.
FROM ${RUNTIME_BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iptables nftables iproute2 >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/interpose
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/package.json ./native/package.json
COPY --from=build /src/native/build/Release/interpose_native.node ./native/build/Release/interpose_native.node
# The CNI shim `interpose cni install` copies into the node's CNI bin dir (docs/cni.md).
COPY --from=build /src/native/build/Release/interpose-cni-shim ./native/build/Release/interpose-cni-shim
# /usr/local/bin/interpose: the package's bin, as `npm install -g` would link it.
RUN ln -s "/opt/interpose/$(node -p "require('./package.json').bin.interpose")" /usr/local/bin/interpose \
 && interpose --version \
 && node -e "require('node-gyp-build')('/opt/interpose/native')"
# Rules need root with NET_ADMIN/NET_RAW: the pod spec grants them to istio-init only. The
# validation container overrides the user (uid 1337) and drops every capability.
USER 0
ENTRYPOINT ["interpose"]
