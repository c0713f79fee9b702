#!/usr/bin/env bash
# Pod and service CIDRs of a k3s cluster: the server's --cluster-cidr / --service-cidr (from
# the k3s.io/node-args node annotation, else /etc/rancher/k3s/config.yaml), else k3s's
# defaults, said as such.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} [--context CONTEXT] [--config FILE]

Prints the k3s server's --cluster-cidr and --service-cidr, falling back to the config file
(default /etc/rancher/k3s/config.yaml) and then to the defaults 10.42.0.0/16, 10.43.0.0/16.
USAGE
}

ctx=() config=/etc/rancher/k3s/config.yaml
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --context) [ $# -ge 2 ] || die "--context needs a value"; ctx=(--context "$2"); shift 2 ;;
    --config) [ $# -ge 2 ] || die "--config needs a value"; config="$2"; shift 2 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done

args=""
if command -v kubectl >/dev/null 2>&1; then
  args=$(kubectl "${ctx[@]}" get nodes -o jsonpath='{.items[*].metadata.annotations.k3s\.io/node-args}' 2>/dev/null || true)
fi
# node-args is a JSON list ["server","--cluster-cidr","10.42.0.0/16",…]: one token per line.
tokens=$(echo "$args" | tr -d '[]' | tr ',' '\n' | tr -d '"' | sed 's/=/\n/')
flag() { echo "$tokens" | grep -A1 -x -- "$1" | sed -n 2p; }
key() { [ -r "$config" ] && sed -n "s/^$1:[[:space:]]*\"\{0,1\}\([^\" #]*\).*/\1/p" "$config" | head -n 1; }

pods=$(flag --cluster-cidr || true)
services=$(flag --service-cidr || true)
[ -n "$pods" ] || pods=$(key cluster-cidr || true)
[ -n "$services" ] || services=$(key service-cidr || true)
[ -n "$pods" ] || { pods=10.42.0.0/16; echo "note: no --cluster-cidr found: k3s default $pods" >&2; }
[ -n "$services" ] || { services=10.43.0.0/16; echo "note: no --service-cidr found: k3s default $services" >&2; }
print_ranges "$pods" "$services"
