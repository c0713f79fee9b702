#!/usr/bin/env bash
# Installs every Debian package interpose needs to build, test and run. Shared by .ci/run and
# the Vagrant provisioner so the two cannot drift. Debian 12 (bookworm) with Node 20 assumed;
# run as root.
set -euo pipefail

packages=(
  iptables        # iptables-nft / iptables-legacy, iptables-restore, ip6tables-restore
  containernetworking-plugins  # bridge, host-local: the reference plugins test/cni chains interpose-cni after
  nftables        # nft, for the native nftables backend
  iproute2        # ip netns, ip rule, ip route, veth
  cmake g++ make  # the native addon (cmake-js)
  libnghttp2-dev  # nghttp2's header for the addon's h2c fast path (the addon uses Node's own nghttp2; the sanitizer test binary links this one)
  ninja-build     # cmake-js builds with ninja when present: every core, not one file at a time
  python3         # shared conformance tool
  curl            # the lab's and tests' HTTP client
  bind9-dnsutils  # dig, the DNS proxy tests' and the lab's DNS client
  openssl         # test CA and certificates for TLS stand-ins
  ca-certificates
  procps          # ps/pkill in cleanup paths
  kmod            # modprobe for netfilter modules where the kernel needs it
  valgrind        # memcheck run of the native addon's test binary
  ruby            # `ruby -c Vagrantfile` in test/unit/vagrant.test.ts
  shellcheck      # lint of scripts/*.sh in the unit tests
  haproxy         # baseline of the proxy benches (npm run bench:proxy, bench:http, bench:http-per-core), not needed by the tests
  wrk nghttp2-client  # HTTP load generators (wrk, h2load) of bench:proxy, bench:http and bench:http-per-core, not needed by the tests
  g++-aarch64-linux-gnu  # cross-builds the linux-arm64 prebuilt addon (scripts/build-prebuilds.sh)
  podman runc     # builds and runs the image (runc: crun lacks this kernel's cgroup v1 mode)
  mmdebstrap      # the image's local base from Debian's archive (scripts/build-base-images.sh)
)

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-system-deps: ${#packages[@]} packages present: ${packages[*]}"
