#!/usr/bin/env bash
# Pod and service CIDRs of an IBM Cloud Private cluster, from its installer configuration.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} [PATH/TO/cluster/config.yaml]

Prints network_cidr and service_cluster_ip_range from the ICP installer's config.yaml
(default: cluster/config.yaml), or ICP's defaults for keys left commented out.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac
config="${1:-cluster/config.yaml}"
[ -r "$config" ] || die "cannot read $config: pass the ICP cluster/config.yaml"

value() { sed -n "s/^$1:[[:space:]]*\"\{0,1\}\([^\" #]*\).*/\1/p" "$config" | head -n 1; }
pods=$(value network_cidr)
services=$(value service_cluster_ip_range)
[ -n "$pods" ] || { pods=10.1.0.0/16; echo "note: network_cidr not set: ICP default $pods" >&2; }
[ -n "$services" ] || { services=10.0.0.1/24; echo "note: service_cluster_ip_range not set: ICP default $services" >&2; }
print_ranges "$pods" "$services"
