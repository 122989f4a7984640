#!/usr/bin/env bash
# Install the Debian packages a make target needs, only when a program or library it needs is missing.
# Usage: scripts/system-deps.sh test|bench
set -euo pipefail

want=()
need() { want+=("$@"); }

have_pg() { command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

case "${1:-test}" in
  test)
    have_pg || need postgresql
    command -v pkg-config >/dev/null 2>&1 || need pkg-config
    pkg-config --exists libvirt 2>/dev/null || need libvirt-dev
    command -v gcc >/dev/null 2>&1 || need gcc
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need nginx
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need haproxy
    command -v redis-server >/dev/null 2>&1 || need redis-server
    command -v etcd >/dev/null 2>&1 || need etcd-server
    # ZooKeeper's jars (and Java) only: the tests start their own server; zookeeperd would add a system service.
    [ -f /usr/share/java/zookeeper.jar ] || need zookeeper
    command -v promtool >/dev/null 2>&1 || need prometheus
    # The dashboard's browser tests drive Debian's Chromium (Playwright downloads no browser of its own).
    [ -x /usr/bin/chromium ] || need chromium
    fc-list 2>/dev/null | grep -qi dejavu || need fonts-dejavu-core
    ;;
  bench)
    "$0" test
    command -v prometheus-node-exporter >/dev/null 2>&1 || need prometheus-node-exporter
    command -v supervisord >/dev/null 2>&1 || need supervisor
    command -v wrk >/dev/null 2>&1 || need wrk
    command -v stress-ng >/dev/null 2>&1 || need stress-ng
    ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac

[ ${#want[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${want[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "missing Debian packages: ${want[*]}; install them as root (apt-get install ${want[*]})" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
