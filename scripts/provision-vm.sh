#!/usr/bin/env bash
# Provisions a Debian 12 VM for interpose (the Vagrantfile's provisioner): the same system
# packages as CI (scripts/install-system-deps.sh), Node 20, then a build of the working tree.
# Run as root. The source is read from $INTERPOSE_SRC (default /vagrant, Vagrant's synced
# folder) and built in $INTERPOSE_BUILD (default /home/vagrant/interpose).
set -euo pipefail

usage() {
  cat <<USAGE
usage: ${0##*/} [--checks] [--no-node]

  (default)  system packages, Node 20, npm ci + build, /usr/local/bin/interpose
  --checks   then run the kernel tests and \`interpose lab\`
  --no-node  system packages only (a VM that only serves traffic)

Environment: INTERPOSE_SRC (default /vagrant), INTERPOSE_BUILD (default /home/vagrant/interpose).
USAGE
}

checks=no node=yes
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --checks) checks=yes; shift ;;
    --no-node) node=no; shift ;;
    *) usage >&2; echo "${0##*/}: unknown argument $1" >&2; exit 1 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "${0##*/}: run as root" >&2; exit 1; }

src="${INTERPOSE_SRC:-/vagrant}"
build="${INTERPOSE_BUILD:-/home/vagrant/interpose}"
[ -f "$src/package.json" ] || { echo "${0##*/}: no interpose checkout at $src (set INTERPOSE_SRC)" >&2; exit 1; }

# The one list of system packages, shared with .ci/run.
bash "$src/scripts/install-system-deps.sh"
[ "$node" = yes ] || exit 0

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends gnupg rsync >/dev/null

# Debian 12 ships Node 18; interpose needs Node 20 (engines >= 20.17): NodeSource's apt repo.
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key \
    | gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg
  echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main" \
    >/etc/apt/sources.list.d/nodesource.list
  apt-get update -qq
  apt-get install -y -qq nodejs >/dev/null
fi
echo "provision-vm: node $(node --version), npm $(npm --version)"

# Build on the VM's own disk: node_modules and the native addon belong to this machine.
mkdir -p "$build"
rsync -a --delete --exclude .git/ --exclude node_modules/ --exclude dist/ --exclude native/build/ --exclude .vagrant/ \
  "$src/" "$build/"
cd "$build"
npm ci --no-audit --no-fund
npm run build
ln -sf "$build/dist/cli/main.js" /usr/local/bin/interpose
if id vagrant >/dev/null 2>&1; then chown -R vagrant:vagrant "$build"; fi
echo "provision-vm: $(interpose --version) built in $build, linked as /usr/local/bin/interpose"

[ "$checks" = yes ] || exit 0
npx ava 'test/kernel/**/*.test.ts'
if interpose lab --help >/dev/null 2>&1; then
  interpose lab
else
  echo "provision-vm: this build has no \`interpose lab\` yet; skipped" >&2
fi
