# interpose as an istio-init replacement: a privileged init container that writes the pod's
# redirect rules with `interpose istio-iptables` (same flags as istio-iptables) and exits.
#
#   docker build -t interpose:dev .
#   docker run --rm interpose:dev --dry-run -i 10.96.0.0/12   # print the rules, change nothing
#
# Build stage: compiler and cmake for the native addon (cmake-js), tsc for dist/.
FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: "prepare" would build before the sources are copied in.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY native ./native
COPY src ./src
RUN npm run build \
 && test -x dist/cli/main.js \
 && npm prune --omit=dev

# Runtime stage: node plus the netfilter tools interpose drives. The iptables package brings
# both iptables-nft and iptables-legacy; interpose picks the one already in use.
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/interpose
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/build/Release/interpose_native.node ./native/build/Release/interpose_native.node
RUN ln -s /opt/interpose/dist/cli/main.js /usr/local/bin/interpose \
 && interpose --version
# Rules need root with NET_ADMIN/NET_RAW: the pod spec grants them to this container only.
USER 0
ENTRYPOINT ["interpose", "istio-iptables"]
