#!/usr/bin/env bash
# Pod and service CIDRs of a minikube cluster, from the control plane's flags.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} [PROFILE]

Prints kube-apiserver --service-cluster-ip-range and kube-controller-manager --cluster-cidr
of minikube profile PROFILE (kube context, default: minikube).
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  -*) usage >&2; exit 1 ;;
esac
need_cli kubectl https://kubernetes.io/docs/tasks/tools/
apiserver_ranges --context "${1:-minikube}"
