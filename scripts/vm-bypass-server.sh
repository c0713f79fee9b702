#!/usr/bin/env bash
# The bypass-server VM: serves one recognisable page on port 8080 of every address, so the
# client can tell a direct answer from a redirected one. Run as root (Vagrant provisioner).
set -euo pipefail

usage() {
  cat <<USAGE
usage: ${0##*/}

Starts (or restarts) the systemd service interpose-bypass-server: python3 http.server on
port 8080 serving a page that says "served-by-bypass-server".
USAGE
}
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  ?*) usage >&2; exit 1 ;;
esac

root=/srv/interpose-bypass
mkdir -p "$root"
echo "served-by-bypass-server" >"$root/index.html"
systemctl stop interpose-bypass-server 2>/dev/null || true
systemd-run --unit interpose-bypass-server --property Restart=always \
  python3 -m http.server 8080 --directory "$root"
echo "vm-bypass-server: serving $root on port 8080"
