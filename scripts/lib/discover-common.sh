# shellcheck shell=bash
# Shared by scripts/discover-*.sh: argument helpers and the one way they print ranges.
# Sourced, not run. The scripts stay thin: each only knows which CLI call gives its ranges.

# die MESSAGE: print to stderr and exit 1.
die() {
  echo "${0##*/}: $*" >&2
  exit 1
}

# need_cli NAME URL: fail with an install hint when NAME is not on PATH.
need_cli() {
  command -v "$1" >/dev/null 2>&1 || die "the $1 CLI is not installed: install it from $2"
}

# context_only_args ARGS...: for scripts whose only option is --context; sets the global
# array ctx (empty, or --context NAME), handles -h/--help with the script's usage().
# shellcheck disable=SC2034 # ctx belongs to the caller: this function sets it for them.
context_only_args() {
  ctx=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --context) [ $# -ge 2 ] || die "--context needs a value"; ctx=(--context "$2"); shift 2 ;;
      *) usage >&2; die "unknown argument $1" ;;
    esac
  done
}

# join_commas WORDS...: the words joined by commas (whitespace- or comma-separated input).
join_commas() {
  local out="" w
  for w in $(echo "$*" | tr ',' ' '); do
    out="${out:+$out,}$w"
  done
  echo "$out"
}

# print_ranges PODS SERVICES: the ranges and the three ways to use them.
print_ranges() {
  local pods services all
  pods=$(join_commas "$1")
  services=$(join_commas "$2")
  all=$(join_commas "$pods" "$services")
  [ -n "$all" ] || die "no ranges found"
  echo "pod CIDRs:     ${pods:-none found}"
  echo "service CIDRs: ${services:-none found}"
  echo
  echo "Helm / istioctl: --set values.global.proxy.includeIPRanges=\"${all//,/\\,}\""
  echo "pod annotation:  traffic.sidecar.istio.io/includeOutboundIPRanges: \"$all\""
  echo "interpose:       interpose istio-iptables -i $all ..."
}

# apiserver_ranges KUBECTL_ARGS...: print_ranges from the static kube-apiserver and
# kube-controller-manager pods' flags (minikube, Docker Desktop).
apiserver_ranges() {
  local api cm services pods
  api=$(kubectl "$@" -n kube-system get pods -l component=kube-apiserver \
    -o jsonpath='{.items[0].spec.containers[0].command}')
  cm=$(kubectl "$@" -n kube-system get pods -l component=kube-controller-manager \
    -o jsonpath='{.items[0].spec.containers[0].command}')
  pods=$(echo "$cm" | tr '"[]' '\n' | sed -n 's/^--cluster-cidr=//p' | tr '\n' ',')
  # jsonpath prints the argv as a JSON list: split on quotes and brackets only, so a
  # dual-stack value (a,b) stays whole.
  services=$(echo "$api" | tr '"[]' '\n' | sed -n 's/^--service-cluster-ip-range=//p' | tr '\n' ',')
  [ -n "$services" ] || die "kube-apiserver has no --service-cluster-ip-range"
  print_ranges "$pods" "$services"
}
