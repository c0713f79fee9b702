#!/usr/bin/env bash
# Pod and service CIDRs of a GKE cluster, from gcloud. `interpose discover --platform gke`
# does the same with dual-stack support and clearer errors.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} CLUSTER (--zone ZONE | --region REGION) [--project PROJECT]

Prints the cluster's pod and service CIDRs (clusterIpv4Cidr, servicesIpv4Cidr from
'gcloud container clusters describe') and the includeIPRanges settings that use them.
USAGE
}

cluster="" location=() project=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --zone | --region) [ $# -ge 2 ] || die "$1 needs a value"; location=("$1" "$2"); shift 2 ;;
    --project) [ $# -ge 2 ] || die "--project needs a value"; project=(--project "$2"); shift 2 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) cluster="$1"; shift ;;
  esac
done
[ -n "$cluster" ] || { usage >&2; exit 1; }
need_cli gcloud https://cloud.google.com/sdk/docs/install

ranges=$(gcloud container clusters describe "$cluster" "${location[@]}" "${project[@]}" \
  --format='value(clusterIpv4Cidr,servicesIpv4Cidr)')
read -r pods services <<<"$ranges"
print_ranges "$pods" "$services"
