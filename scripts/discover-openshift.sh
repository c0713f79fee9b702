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
context_only_args "$@"
need_cli oc https://docs.openshift.com/container-platform/latest/cli_reference/openshift_cli/getting-started-cli.html

pods=$(oc "${ctx[@]}" get network.config.openshift.io cluster -o jsonpath='{.status.clusterNetwork[*].cidr}')
services=$(oc "${ctx[@]}" get network.config.openshift.io cluster -o jsonpath='{.status.serviceNetwork[*]}')
print_ranges "$pods" "$services"
