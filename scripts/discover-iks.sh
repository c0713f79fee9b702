#!/usr/bin/env bash
# Pod and service subnets of an IBM Cloud Kubernetes Service cluster, from ibmcloud ks.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} CLUSTER

Prints the Pod Subnet and Service Subnet from 'ibmcloud ks cluster get' and the
includeIPRanges settings that use them.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "" | -*) usage >&2; exit 1 ;;
esac
need_cli ibmcloud https://cloud.ibm.com/docs/cli?topic=cli-getting-started

info=$(ibmcloud ks cluster get --cluster "$1")
pods=$(echo "$info" | sed -n 's/^Pod Subnet:[[:space:]]*//p')
services=$(echo "$info" | sed -n 's/^Service Subnet:[[:space:]]*//p')
print_ranges "$pods" "$services"
