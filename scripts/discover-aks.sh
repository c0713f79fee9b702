#!/usr/bin/env bash
# Pod and service CIDRs of an AKS cluster, from az. With classic Azure CNI pods use VNet
# addresses instead; `interpose discover --platform aks` looks those up too.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} --resource-group GROUP --name CLUSTER

Prints networkProfile.podCidr and networkProfile.serviceCidr from 'az aks show' and the
includeIPRanges settings that use them.
USAGE
}

group="" name=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -g | --resource-group) [ $# -ge 2 ] || die "$1 needs a value"; group="$2"; shift 2 ;;
    -n | --name) [ $# -ge 2 ] || die "$1 needs a value"; name="$2"; shift 2 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
if [ -z "$group" ] || [ -z "$name" ]; then
  usage >&2
  exit 1
fi
need_cli az https://learn.microsoft.com/cli/azure/install-azure-cli

read -r plugin pods services < <(az aks show --resource-group "$group" --name "$name" \
  --query '[networkProfile.networkPlugin, networkProfile.podCidr, networkProfile.serviceCidr]' --output tsv | tr '\n' ' ')
if [ "$pods" = "None" ] || [ -z "$pods" ]; then
  echo "note: network plugin '$plugin' gives pods VNet addresses; add the VNet's prefixes (az network vnet show)" >&2
  pods=""
fi
print_ranges "$pods" "$services"
