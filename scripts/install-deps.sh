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
# make bench: peak RSS and CPU of the guardian come from GNU time -v.
[ -x /usr/bin/time ] || need+=(time)
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${uniq[@]}" >/dev/null
# Debian's package starts redis-server where systemd runs; tests start their own
# servers and never use the packaged one.
