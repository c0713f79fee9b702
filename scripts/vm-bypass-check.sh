#!/usr/bin/env bash
# On the bypass-client VM: proves that includeIPRanges decide, across a real network, which
# connections are redirected. A stand-in redirect target on 15001 answers "redirected"; the
# server VM answers "served-by-bypass-server". Run as root; removes its rules and the stand-in
# on exit.
set -euo pipefail

usage() {
  cat <<USAGE
usage: ${0##*/} SERVER_IP

Three cases against http://SERVER_IP:8080/ (the bypass-server VM):
  1. -i 203.0.113.0/24 (server network not included)     expect: direct answer from the server
  2. -i SERVER_IP/24 (server network included)            expect: redirected to 15001
  3. -i SERVER_IP/24 -x SERVER_IP/32 (server excluded)    expect: direct answer from the server
Only outbound TCP is captured (-b ""), so ssh into this VM is never affected.
USAGE
}
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "" | -*) usage >&2; exit 1 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "${0##*/}: run as root" >&2; exit 1; }
server="$1"
net="${server%.*}.0/24"

stand_in=/run/interpose-bypass-stand-in
mkdir -p "$stand_in"
echo "redirected" >"$stand_in/index.html"
systemd-run --unit interpose-bypass-stand-in --uid nobody \
  python3 -m http.server 15001 --directory "$stand_in" >/dev/null
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  interpose istio-iptables --cleanup-only >/dev/null 2>&1 || true
  systemctl stop interpose-bypass-stand-in 2>/dev/null || true
}
trap cleanup EXIT
sleep 1

failures=0
check() { # DESCRIPTION EXPECTED interpose-flags...
  local what="$1" expected="$2" got
  shift 2
  interpose istio-iptables --reconcile -p 15001 -z 15006 -u 1337 -b "" "$@" >/dev/null
  got=$(curl -s --max-time 5 "http://$server:8080/" || echo "no answer")
  if [ "$got" = "$expected" ]; then
    echo "ok    $what: $got"
  else
    echo "FAIL  $what: expected \"$expected\", got \"$got\""
    failures=$((failures + 1))
  fi
}
check "-i 203.0.113.0/24 (server network not included)" served-by-bypass-server -i 203.0.113.0/24
check "-i $net (server network included)" redirected -i "$net"
check "-i $net -x $server/32 (server excluded)" served-by-bypass-server -i "$net" -x "$server/32"
exit "$failures"
