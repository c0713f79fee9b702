#!/usr/bin/env bash
# Cluster and service networks of an OpenShift 4 cluster, from the cluster network config.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} [--context CONTEXT]

Prints status.clusterNetwork[].cidr and status.serviceNetwork of
network.config.openshift.io/cluster ('oc get') and the includeIPRanges settings that use them.
USAGE
}

ctx=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --context) [ $# -ge 2 ] || die "--context needs a value"; ctx=(--context "$2"); shift 2 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
need_cli oc https://docs.openshift.com/container-platform/latest/cli_reference/openshift_cli/getting-started-cli.html

pods=$(oc "${ctx[@]}" get network.config.openshift.io cluster -o jsonpath='{.status.clusterNetwork[*].cidr}')
services=$(oc "${ctx[@]}" get network.config.openshift.io cluster -o jsonpath='{.status.serviceNetwork[*]}')
print_ranges "$pods" "$services"
