#!/usr/bin/env bash
# Pod and service subnets of a kubeadm cluster, from the kubeadm-config ConfigMap.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} [--context CONTEXT]

Prints networking.podSubnet and networking.serviceSubnet of the ClusterConfiguration in
kube-system/kubeadm-config and the includeIPRanges settings that use them.
USAGE
}

ctx=()
context_only_args "$@"
need_cli kubectl https://kubernetes.io/docs/tasks/tools/

config=$(kubectl "${ctx[@]}" -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}')
pods=$(echo "$config" | sed -n 's/^[[:space:]]*podSubnet:[[:space:]]*//p')
services=$(echo "$config" | sed -n 's/^[[:space:]]*serviceSubnet:[[:space:]]*//p')
[ -n "$pods" ] || echo "note: no podSubnet: the CNI plugin chose the pod range" >&2
[ -n "$services" ] || { services=10.96.0.0/12; echo "note: no serviceSubnet: kubeadm default $services" >&2; }
print_ranges "$pods" "$services"
