#!/usr/bin/env bash
# Service CIDR of an EKS cluster and, for the Amazon VPC CNI (EKS's default), the VPC CIDRs
# pods take their addresses from. `interpose discover --platform eks` also handles IPv6.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
# shellcheck source=lib/discover-common.sh
source "$here/lib/discover-common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} CLUSTER [--region REGION] [--no-vpc]

Prints kubernetesNetworkConfig.serviceIpv4Cidr from 'aws eks describe-cluster' and the
associated CIDR blocks of the cluster's VPC ('aws ec2 describe-vpcs') as pod ranges.
--no-vpc leaves the VPC out (a CNI other than the Amazon VPC CNI).
USAGE
}

cluster="" region=() vpc=yes
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --region) [ $# -ge 2 ] || die "--region needs a value"; region=(--region "$2"); shift 2 ;;
    --no-vpc) vpc=no; shift ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) cluster="$1"; shift ;;
  esac
done
[ -n "$cluster" ] || { usage >&2; exit 1; }
need_cli aws https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html

read -r services vpc_id < <(aws eks describe-cluster --name "$cluster" "${region[@]}" \
  --query 'cluster.[kubernetesNetworkConfig.serviceIpv4Cidr, resourcesVpcConfig.vpcId]' --output text)
pods=""
if [ "$vpc" = yes ]; then
  # shellcheck disable=SC2016 # the backticks are a JMESPath literal, not a shell expansion
  pods=$(aws ec2 describe-vpcs --vpc-ids "$vpc_id" "${region[@]}" \
    --query 'Vpcs[0].CidrBlockAssociationSet[?CidrBlockState.State==`associated`].CidrBlock' --output text)
fi
print_ranges "$pods" "$services"
