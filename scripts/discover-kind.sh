#!/usr/bin/env bash
# Pod and service subnets of a kind cluster: kind is kubeadm inside, so this reads the same
# kubeadm-config ConfigMap through the kind-NAME context.
set -euo pipefail

usage() {
  cat <<USAGE
usage: ${0##*/} [CLUSTER]

Reads the kubeadm-config ConfigMap of kind cluster CLUSTER (default: kind) through the
kube context kind-CLUSTER, as discover-kubeadm.sh does.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  -*) usage >&2; exit 1 ;;
esac
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
exec "$here/discover-kubeadm.sh" --context "kind-${1:-kind}"
