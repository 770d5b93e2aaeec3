#!/usr/bin/env bash
# Installs what redis-guardian's tests and demo need, when it is missing: a real
# redis-server and redis-tools (redis-cli, redis-benchmark), and util-linux's
# setpriv/prlimit that the fault injection uses, and GNU time for make bench. Debian/Ubuntu, as root.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v setpriv >/dev/null || need+=(util-linux)
command -v prlimit >/dev/null || need+=(util-linux)
command -v pgrep >/dev/null || need+=(procps)
# A real systemd-journald and journalctl for the journal tests.
[ -x /lib/systemd/systemd-journald ] || need+=(systemd)
command -v journalctl >/dev/null || need+=(systemd)
# promtool checks and unit-tests the shipped alerting rules.
command -v promtool >/dev/null || need+=(prometheus)
# The slow-disk fault: an ext4 file system on a loop device (util-linux's losetup).
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v losetup >/dev/null || need+=(util-linux)
# The zsh completion test checks the generated function with zsh -n.
command -v zsh >/dev/null || need+=(zsh)
# make bench: peak RSS and CPU of the guardian come from GNU time -v, and figure 8
# measures Debian's prometheus-redis-exporter beside it.
[ -x /usr/bin/time ] || need+=(time)
command -v prometheus-redis-exporter >/dev/null || need+=(prometheus-redis-exporter)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root (or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
mapfile -t uniq < <(printf '%s\n' "${need[@]}" | sort -u)
echo "install-deps: installing ${uniq[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting services (redis-server on 6379, prometheus on
# 9090) where no systemd runs: the tests start only what they own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${uniq[@]}" >/dev/null
# Debian's package starts redis-server where systemd runs; tests start their own
# servers and never use the packaged one.
