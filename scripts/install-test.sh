#!/usr/bin/env bash
# Install test in a real systemd: boots a Debian container (systemd-nspawn) with
# real redis-servers (redis-server.service and redis-server@second.service),
# installs the deb and goes through what a user would do:
#   install (enabled, started, READY, journal entries, metrics) -> the template
#   unit redis-guardian@second -> a real MISCONF fault is remediated on both ->
#   systemctl reload -> upgrade to a newer build keeps a modified config and the
#   held remedies -> removal restores the held Redis settings of both and stops
#   the services -> purge removes the state. Then the rpm of the same build, with
#   Debian's rpm (--nodeps): first install, upgrade, erase, so the scriptlets run
#   with rpm's counts under the same systemd.
# The bootstrapped root is cached as a tarball (REDIS_GUARDIAN_CI_CACHE, default
# /var/cache/redis-guardian-ci); delete it to bootstrap again.
#
# Usage: scripts/install-test.sh DEB [UPGRADE_DEB]
#   Without UPGRADE_DEB it builds one (make package with a higher version). The
#   rpms are taken from beside the debs (as make package writes them).
# Needs root, debootstrap, systemd-container (installed when missing) and the
# machine's apt mirror. The container shares the host's network: its Redis servers
# listen on 127.0.0.1:$REDIS_PORT and $REDIS_PORT2 (default 6399 and 6398, never
# 6379), the guardians' metrics on $METRICS_PORT and $METRICS_PORT2 (9699, 9698);
# all must be free.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT=${REDIS_PORT:-6399}
REDIS_PORT2=${REDIS_PORT2:-6398}
METRICS_PORT=${METRICS_PORT:-9699}
METRICS_PORT2=${METRICS_PORT2:-9698}
# SUITE: the Debian release of the container (bookworm = 12, trixie = 13).
# FLAVOR: redis (redis-server, the full flow) or valkey (valkey-server and
# redis-guardian-valkey.service: install, a real fault, removal, purge).
SUITE=${SUITE:-bookworm}
FLAVOR=${FLAVOR:-redis}
case "$FLAVOR" in redis | valkey) ;; *)
	echo "install-test: FLAVOR=$FLAVOR: want redis or valkey" >&2
	exit 2
	;;
esac
CACHE=${REDIS_GUARDIAN_CI_CACHE:-/var/cache/redis-guardian-ci}
TARBALL=$CACHE/$SUITE-minbase-systemd-dbus.tar.gz
unit=redis-guardian.service
unit2=redis-guardian@second.service
if [ "$FLAVOR" = valkey ]; then
	unit=redis-guardian-valkey.service
	unit2=redis-guardian-valkey@second.service
fi
t0=$(date +%s)

say() { printf '\n== install-test [%3ss]: %s\n' "$(($(date +%s) - t0))" "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() {
	printf '\ninstall-test: FAIL: %s\n' "$*" >&2
	exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then fail "usage: $0 DEB [UPGRADE_DEB]"; fi
deb=$(readlink -f "$1")
[ -f "$deb" ] || fail "no deb at $1 (run make package)"
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, systemd-nspawn, nsenter)"

# The machine's Debian mirror, from its apt sources (never a hard-coded host).
# shellcheck source=scripts/lib/mirror.sh
. scripts/lib/mirror.sh
# The archive that serves the host's bookworm serves trixie too.
mirror() {
	local m
	m=$(debian_mirror "$SUITE")
	[ -n "$m" ] || m=$(debian_mirror bookworm)
	echo "$m"
}

port_free() { [ -z "$(ss -Hltn "sport = :$1")" ]; }

say "tools and ports"
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v ss >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-test: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for v in REDIS_PORT REDIS_PORT2 METRICS_PORT METRICS_PORT2; do
	[ "${!v}" != 6379 ] || fail "$v must not be 6379"
	port_free "${!v}" || fail "port ${!v} is in use on the host; the container needs it (set $v)"
done
ok "ports $REDIS_PORT, $REDIS_PORT2 (redis) and $METRICS_PORT, $METRICS_PORT2 (metrics) are free"

work=$(mktemp -d /var/tmp/redis-guardian-install-test.XXXXXX)
root=$work/root
machine=rg-install-$$
nspawn_pid=
cpid=
guardian_ok=

# Pipes below read their input to the end (grep >/dev/null, sed -n 1p), never
# grep -q or head: under pipefail an early exit would fail the writer with SIGPIPE.

# ns runs a command inside the container, with a clean environment.
ns() {
	nsenter -t "$cpid" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

cleanup() {
	rc=$?
	set +e
	if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
		if [ "$rc" -ne 0 ] && [ -z "$guardian_ok" ]; then
			printf '\n== the guardian journal in the container (last 80 entries)\n' >&2
			ns journalctl -u "$unit" -u "$unit2" --no-pager -n 80 -o short-precise >&2
			ns systemctl status "$unit" "$unit2" --no-pager >&2
		fi
		# A Redis whose final save fails refuses SIGTERM: lift the fault first.
		ns chown redis:redis /var/lib/redis >/dev/null 2>&1
		ns chown valkey:valkey /var/lib/valkey >/dev/null 2>&1
		ns systemctl poweroff >/dev/null 2>&1
	fi
	# Wait for the poweroff. If it hangs, SIGKILL the container's init: that ends
	# every process of the container (killing only systemd-nspawn would leave them).
	if [ -n "$nspawn_pid" ]; then
		for _ in $(seq 120); do
			kill -0 "$nspawn_pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$nspawn_pid" 2>/dev/null; then
			echo "install-test: the container did not power off in 60 s; killing its init ($cpid)" >&2
			[ -n "$cpid" ] && kill -9 "$cpid" 2>/dev/null
			for _ in $(seq 40); do
				kill -0 "$nspawn_pid" 2>/dev/null || break
				sleep 0.5
			done
		fi
		# Never wait without a bound: a systemd-nspawn that outlived its init's
		# SIGKILL is killed too, so a failed boot cannot hang the run.
		if kill -0 "$nspawn_pid" 2>/dev/null; then
			echo "install-test: systemd-nspawn $nspawn_pid still runs; killing it" >&2
			kill -9 "$nspawn_pid" 2>/dev/null
			sleep 1
		fi
		kill -0 "$nspawn_pid" 2>/dev/null || wait "$nspawn_pid" 2>/dev/null
	fi
	if [ -n "$cpid" ] && [ -d "/proc/$cpid" ] && [ "$(awk '{print $3}' "/proc/$cpid/stat" 2>/dev/null)" != Z ]; then
		echo "install-test: the container's init $cpid still runs; $work is left in place" >&2
	elif [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		echo "install-test: systemd-nspawn $nspawn_pid still runs; $work is left in place" >&2
	else
		rm -rf "$work"
	fi
	if [ "$rc" -eq 0 ]; then
		printf '\ninstall-test: all steps passed in %ss\n' "$(($(date +%s) - t0))"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

version_of() { dpkg-deb -f "$1" Version; }
old_version=$(version_of "$deb")
if [ $# -eq 2 ]; then
	new_deb=$(readlink -f "$2")
else
	say "building the upgrade package (version $old_version+upgradetest)"
	make --no-print-directory package PKG_VERSION="$old_version+upgradetest" DIST="$work/upgrade" >"$work/upgrade.log" 2>&1 ||
		{ cat "$work/upgrade.log" >&2; fail "make package for the upgrade failed"; }
	new_deb=$(ls "$work"/upgrade/redis-guardian_*.deb)
fi
new_version=$(version_of "$new_deb")
dpkg --compare-versions "$new_version" gt "$old_version" || fail "upgrade version $new_version is not above $old_version"
rpm_beside() {
	f=$(find "$(dirname "$1")" -maxdepth 1 -name "redis-guardian_$2_*.rpm" | sed -n 1p)
	[ -n "$f" ] || fail "no rpm of version $2 beside $1 (make package builds both)"
	echo "$f"
}
old_rpm=$(rpm_beside "$deb" "$old_version")
new_rpm=$(rpm_beside "$new_deb" "$new_version")
ok "install $old_version, upgrade to $new_version (deb and rpm)"

say "root file system (cache: $TARBALL)"
if [ ! -f "$TARBALL" ]; then
	m=$(mirror)
	[ -n "$m" ] || fail "no Debian mirror for $SUITE in /etc/apt/sources.list*"
	echo "install-test: bootstrapping $SUITE from $m (about a minute, once)"
	mkdir -p "$CACHE" "$work/bootstrap"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus "$SUITE" "$work/bootstrap" "$m" >"$work/debootstrap.log" 2>&1 ||
		{ tail -30 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
	tar -C "$work/bootstrap" --numeric-owner -czf "$TARBALL.tmp.$$" .
	mv "$TARBALL.tmp.$$" "$TARBALL"
	rm -rf "$work/bootstrap"
fi
mkdir "$root"
tar -C "$root" --numeric-owner -xzf "$TARBALL"
ok "extracted into $root"

say "booting the container $machine"
systemd-nspawn -D "$root" --boot --register=no --keep-unit --machine="$machine" --console=passive \
	>"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
# The container's init is the child of systemd-nspawn that runs in a new pid
# namespace as systemd. systemd-nspawn may briefly have other children (helpers
# it forks while setting up): taking the first child could pick one of those,
# and every nsenter into it would then fail. Wait until the right one is there.
host_pidns=$(readlink /proc/self/ns/pid)
container_init() {
	local p
	for p in $(pgrep -P "$nspawn_pid"); do
		[ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" != "$host_pidns" ] || continue
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] || continue
		echo "$p"
		return 0
	done
	return 1
}
cpid=
for _ in $(seq 300); do
	cpid=$(container_init) && break
	cpid=
	kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/nspawn.log" >&2; fail "systemd-nspawn exited"; }
	sleep 0.1
done
[ -n "$cpid" ] || fail "no systemd inside the container"
# Until its bus is up, systemctl inside fails at once: poll instead of --wait.
state=
for _ in $(seq 120); do
	state=$(nsenter -t "$cpid" -a systemctl is-system-running 2>/dev/null) || true
	case "$state" in running | degraded | maintenance | stopping) break ;; esac
	sleep 0.5
done
case "$state" in
running) ok "systemd is running (pid $cpid on the host)" ;;
degraded) ok "systemd is degraded: $(ns systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')" ;;
*) fail "the container's systemd did not come up within 60 s (state '$state')" ;;
esac

# preflight_step turns AOF on in the server (and its config file), enables the
# preflight unit, restarts the server and checks the unit ran before it, as the
# server's user, and found the append-only files valid with the server's own
# checker; then it puts AOF and the unit back as they were.
#   preflight_step SERVER_UNIT PREFLIGHT_UNIT CLI...
preflight_step() {
	local server=$1 pf=$2
	shift 2
	say "preflight: systemctl enable $pf, restart $server"
	"$@" config set appendonly yes >/dev/null
	for _ in $(seq 100); do
		"$@" info persistence | tr -d '\r' | grep -qx 'aof_rewrite_in_progress:0' &&
			"$@" info persistence | tr -d '\r' | grep -qx 'aof_rewrite_scheduled:0' && break
		sleep 0.1
	done
	[ "$("$@" config rewrite)" = OK ] || fail "CONFIG REWRITE failed"
	ns systemctl enable "$pf" >/dev/null 2>&1 || fail "systemctl enable $pf failed"
	local at
	at=$(ns date +%s)
	ns systemctl restart "$server" || fail "systemctl restart $server failed"
	for _ in $(seq 50); do
		[ "$("$@" ping 2>/dev/null)" = PONG ] && break
		sleep 0.2
	done
	[ "$("$@" ping)" = PONG ] || fail "$server does not answer after the restart"
	local log
	log=$(ns journalctl -u "$pf" --since "@$at" -o cat)
	printf '%s\n' "$log" | grep -q 'preflight: the append-only files are valid' ||
		fail "$pf did not find the append-only files valid: $log"
	[ "$(ns systemctl show -P Result "$pf")" = success ] || fail "$pf: Result $(ns systemctl show -P Result "$pf")"
	ok "$pf ran before $server and found the AOF valid: $(printf '%s\n' "$log" | grep 'preflight: the append-only' | tail -n 1 | cut -c1-140)"
	ns systemctl disable "$pf" >/dev/null 2>&1 || fail "systemctl disable $pf failed"
	"$@" config set appendonly no >/dev/null
	[ "$("$@" config rewrite)" = OK ] || fail "CONFIG REWRITE failed"
}

# valkey_flow is the whole test for FLAVOR=valkey: Debian's valkey-server, the
# package enables redis-guardian-valkey.service by itself (no redis-server here),
# which runs as valkey, follows Valkey's log and lifts a real MISCONF; removal
# restores the setting; purge removes the state.
valkey_flow() {
	say "valkey-server in the container, on port $REDIS_PORT"
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	ns sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends valkey-server valkey-tools' \
		>"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; fail "apt-get install valkey-server failed"; }
	rm -f "$root/usr/sbin/policy-rc.d"
	sed -i "s/^port 6379\$/port $REDIS_PORT/" "$root/etc/valkey/valkey.conf"
	grep -qx "port $REDIS_PORT" "$root/etc/valkey/valkey.conf" || fail "could not set the port in /etc/valkey/valkey.conf"
	ns systemctl restart valkey-server
	vcli() { ns valkey-cli -p "$REDIS_PORT" "$@"; }
	for _ in $(seq 50); do
		[ "$(vcli ping 2>/dev/null)" = PONG ] && break
		sleep 0.2
	done
	[ "$(vcli ping)" = PONG ] || fail "valkey-server does not answer on $REDIS_PORT"
	ok "$(vcli info server | tr -d '\r' | grep '^valkey_version:'), save points: $(vcli config get save | tail -n 1)"

	say "installing $(basename "$deb") (no redis-server here: the Valkey guardian is the one enabled)"
	cfg=$root/etc/redis-guardian/valkey.yaml
	mkdir -p "$root/etc/redis-guardian"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/redis-guardian/valkey.yaml >"$cfg"
	sed -i -e "s|^  - addr: 127.0.0.1:6379\$|  - addr: 127.0.0.1:$REDIS_PORT|" -e "s|^metrics_listen:.*|metrics_listen: 127.0.0.1:$METRICS_PORT|" "$cfg"
	grep -q "^  - addr: 127.0.0.1:$REDIS_PORT\$" "$cfg" || fail "could not point valkey.yaml at port $REDIS_PORT"
	cp "$deb" "$root/root/old.deb"
	started=$(ns date +%s)
	ns apt-get install -y -o Dpkg::Options::=--force-confold /root/old.deb </dev/null >"$work/dpkg.log" 2>&1 ||
		{ cat "$work/dpkg.log" >&2; fail "apt-get install ./old.deb failed"; }
	[ "$(ns systemctl is-enabled "$unit")" = enabled ] || fail "$unit is not enabled after the first install"
	[ "$(ns systemctl is-active "$unit")" = active ] || fail "$unit is not active after the first install"
	[ "$(ns systemctl is-enabled redis-guardian.service)" != enabled ] || fail "redis-guardian.service was enabled on a host without redis-server"
	ns journalctl -u "$unit" --since "@$started" -o cat | grep "^Started $unit" >/dev/null ||
		fail "systemd did not log 'Started $unit' (READY=1)"
	ok "enabled and active, READY (redis-guardian.service left disabled)"
	gpid=$(ns systemctl show -P MainPID "$unit")
	[ "$(ns stat -c %U "/proc/$gpid")" = valkey ] || fail "the guardian does not run as valkey"
	[ "$(ns systemctl show -P After "$unit" | tr ' ' '\n' | grep -cx valkey-server.service)" = 1 ] || fail "$unit is not ordered after valkey-server.service"
	[ "$(ns stat -c %U:%a /var/lib/redis-guardian-valkey)" = valkey:750 ] || fail "/var/lib/redis-guardian-valkey is not valkey 0750"
	ok "runs as valkey (pid $gpid), ordered after valkey-server.service, state in /var/lib/redis-guardian-valkey"
	followed=
	for _ in $(seq 50); do
		followed=$(ns journalctl -u "$unit" --since "@$started" -o cat | grep 'following the redis log' || true)
		[ -n "$followed" ] && break
		sleep 0.2
	done
	ns journalctl -u "$unit" --since "@$started" -o json | grep '"PATH":"/var/log/valkey/valkey-server.log"' >/dev/null ||
		fail "the guardian does not follow /var/log/valkey/valkey-server.log: $followed"
	ok "follows /var/log/valkey/valkey-server.log"

	preflight_step valkey-server.service redis-guardian-valkey-preflight.service vcli

	say "a real fault: /var/lib/valkey belongs to root, BGSAVE fails, MISCONF"
	swb() { vcli config get stop-writes-on-bgsave-error | tail -n 1; }
	[ "$(swb)" = yes ] || fail "stop-writes-on-bgsave-error is not yes before the fault"
	ns chown root:root /var/lib/valkey
	vcli bgsave >/dev/null
	for _ in $(seq 100); do
		[ "$(swb)" = no ] && break
		sleep 0.1
	done
	[ "$(swb)" = no ] || fail "the guardian did not lift MISCONF: $(ns journalctl -u "$unit" -n 20 -o cat)"
	[ "$(vcli set install-test during)" = OK ] || fail "writes are rejected although the toggle is held"
	[ -f "$root/var/lib/redis-guardian-valkey/valkey.ledger.json" ] || fail "no ledger in /var/lib/redis-guardian-valkey"
	ok "stop-writes-on-bgsave-error no, writes accepted, the change is in the ledger"

	say "removal (the fault still holds): restore, stop, disable"
	ns apt-get remove -y redis-guardian </dev/null >"$work/remove.log" 2>&1 || { cat "$work/remove.log" >&2; fail "apt-get remove failed"; }
	[ "$(swb)" = yes ] || fail "removal did not restore stop-writes-on-bgsave-error: $(cat "$work/remove.log")"
	[ "$(ns systemctl is-active "$unit")" != active ] || fail "$unit still active after removal"
	[ "$(ns systemctl is-enabled "$unit" 2>/dev/null)" != enabled ] || fail "$unit still enabled after removal"
	ok "stop-writes-on-bgsave-error is yes again, $unit inactive and not enabled"
	ns chown valkey:valkey /var/lib/valkey

	say "purge"
	ns apt-get purge -y redis-guardian </dev/null >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "apt-get purge failed"; }
	[ ! -e "$root/var/lib/redis-guardian-valkey" ] || fail "/var/lib/redis-guardian-valkey is still there after purge"
	ok "/var/lib/redis-guardian-valkey is gone"
	guardian_ok=1
}
if [ "$FLAVOR" = valkey ]; then
	valkey_flow
	say "power off"
	exit 0
fi

say "redis-server and redis-server@second in the container, on ports $REDIS_PORT and $REDIS_PORT2"
# Debian's postinst would start Redis on 6379 of the shared network: forbid starting
# until the port is changed.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
ns sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server redis-tools rpm' \
	>"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; fail "apt-get install redis-server failed"; }
rm -f "$root/usr/sbin/policy-rc.d"
sed -i "s/^port 6379\$/port $REDIS_PORT/" "$root/etc/redis/redis.conf"
grep -qx "port $REDIS_PORT" "$root/etc/redis/redis.conf" || fail "could not set the port in /etc/redis/redis.conf"
# Debian's instance template: /etc/redis/redis-%i.conf, same data dir, own files.
sed -e "s/^port $REDIS_PORT\$/port $REDIS_PORT2/" \
	-e "s|^pidfile .*|pidfile /run/redis-second/redis-server.pid|" \
	-e "s|^logfile .*|logfile /var/log/redis/redis-server-second.log|" \
	-e "s|^dbfilename .*|dbfilename dump-second.rdb|" \
	"$root/etc/redis/redis.conf" >"$root/etc/redis/redis-second.conf"
grep -qx "port $REDIS_PORT2" "$root/etc/redis/redis-second.conf" || fail "could not write /etc/redis/redis-second.conf"
ns chown redis:redis /etc/redis/redis-second.conf
ns chmod 0640 /etc/redis/redis-second.conf
ns systemctl restart redis-server
ns systemctl start redis-server@second
rcli() { ns redis-cli -p "$REDIS_PORT" "$@"; }
rcli2() { ns redis-cli -p "$REDIS_PORT2" "$@"; }
for _ in $(seq 50); do
	[ "$(rcli ping 2>/dev/null)" = PONG ] && [ "$(rcli2 ping 2>/dev/null)" = PONG ] && break
	sleep 0.2
done
[ "$(rcli ping)" = PONG ] || fail "redis-server does not answer on $REDIS_PORT"
[ "$(rcli2 ping)" = PONG ] || fail "redis-server@second does not answer on $REDIS_PORT2"
ok "$(rcli info server | tr -d '\r' | grep '^redis_version:'), save points: $(rcli config get save | tail -n 1)"

say "installing $(basename "$deb")"
# The admin's config is in place before the package arrives (as configuration
# management does): it points at the container's Redis, never at 6379.
cfg=$root/etc/redis-guardian/config.yaml
mkdir -p "$root/etc/redis-guardian"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/redis-guardian/config.yaml >"$cfg"
sed -i "s|^  - addr: 127.0.0.1:6379\$|  - addr: 127.0.0.1:$REDIS_PORT|" "$cfg"
grep -q "^  - addr: 127.0.0.1:$REDIS_PORT\$" "$cfg" || fail "could not point the config at port $REDIS_PORT"
grep -q '^metrics_listen:' "$cfg" || fail "the shipped config has no metrics_listen"
sed -i "s|^metrics_listen:.*|metrics_listen: 127.0.0.1:$METRICS_PORT|" "$cfg"
# The instance's config, as README.md says: a copy with its own address and port.
cfg2=$root/etc/redis-guardian/second.yaml
sed -e "s|^  - addr: 127.0.0.1:$REDIS_PORT\$|  - addr: 127.0.0.1:$REDIS_PORT2|" \
	-e "s|^metrics_listen:.*|metrics_listen: 127.0.0.1:$METRICS_PORT2|" "$cfg" >"$cfg2"
grep -q "^  - addr: 127.0.0.1:$REDIS_PORT2\$" "$cfg2" || fail "could not write second.yaml"
cp "$cfg" "$work/config.seed"
cp "$deb" "$root/root/old.deb"
cp "$new_deb" "$root/root/new.deb"
cp "$old_rpm" "$root/root/old.rpm"
cp "$new_rpm" "$root/root/new.rpm"
started=$(ns date +%s)
# apt, not dpkg -i: it brings the dependencies (procps) from the mirror.
ns apt-get install -y -o Dpkg::Options::=--force-confold /root/old.deb </dev/null >"$work/dpkg.log" 2>&1 ||
	{ cat "$work/dpkg.log" >&2; fail "apt-get install ./old.deb failed"; }
[ "$(ns systemctl is-enabled "$unit")" = enabled ] || fail "$unit is not enabled after the first install"
[ "$(ns systemctl is-active "$unit")" = active ] || fail "$unit is not active after the first install"
ok "enabled and active"
[ "$(ns systemctl show -P Type "$unit")" = notify ] || fail "$unit is not Type=notify"
ns journalctl -u "$unit" --since "@$started" -o cat | grep "^Started $unit" >/dev/null ||
	fail "systemd did not log 'Started $unit' (READY=1)"
ok "Type=notify, and systemd logged 'Started $unit' (READY=1 received)"
status=$(ns systemctl show -P StatusText "$unit")
[ -n "$status" ] || fail "no STATUS= from the guardian"
ok "status: $status"
gpid=$(ns systemctl show -P MainPID "$unit")
[ "$(ns stat -c %U "/proc/$gpid")" = redis ] || fail "the guardian does not run as redis"
ok "runs as redis (pid $gpid in the container)"
own=0
for _ in $(seq 50); do
	own=$(ns journalctl -u "$unit" _PID="$gpid" --since "@$started" -o cat | wc -l)
	[ "$own" -gt 0 ] && break
	sleep 0.2
done
[ "$own" -gt 0 ] || fail "no journal entries of the guardian itself"
ok "$own journal entries of its own, e.g.: $(ns journalctl -u "$unit" _PID="$gpid" -o cat -n 1 | cut -c1-160)"
fields=$(ns journalctl -u "$unit" _PID="$gpid" SYSLOG_IDENTIFIER=redis-guardian -o json | grep -c '"REDIS_INSTANCE"' || true)
[ "$fields" -gt 0 ] || fail "no native journal entries (SYSLOG_IDENTIFIER=redis-guardian with REDIS_INSTANCE)"
ok "$fields native journal entries with REDIS_INSTANCE"
# The container shares the host's network: its metrics listener is reachable here.
metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics") || fail "no metrics on 127.0.0.1:$METRICS_PORT"
n=$(printf '%s\n' "$metrics" | grep -c '^redis_guardian_' || true)
[ "$n" -gt 0 ] || fail "no redis_guardian_ series on /metrics"
ok "/metrics on 127.0.0.1:$METRICS_PORT: $n redis_guardian_ samples"
[ "$(ns stat -c %U:%a /var/lib/redis-guardian)" = redis:750 ] || fail "/var/lib/redis-guardian is not redis 0750: $(ns stat -c %U:%a /var/lib/redis-guardian)"
ok "/var/lib/redis-guardian is redis 0750"

say "the template unit: systemctl enable --now $unit2"
started2=$(ns date +%s)
ns systemctl enable --now "$unit2" >/dev/null 2>&1 || fail "systemctl enable --now $unit2 failed"
[ "$(ns systemctl is-active "$unit2")" = active ] || fail "$unit2 is not active"
ns journalctl -u "$unit2" --since "@$started2" -o cat | grep "^Started $unit2" >/dev/null ||
	fail "systemd did not log 'Started $unit2' (READY=1)"
[ -n "$(ns systemctl show -P StatusText "$unit2")" ] || fail "no STATUS= from $unit2"
[ "$(ns stat -c %U /var/lib/redis-guardian/second)" = redis ] || fail "/var/lib/redis-guardian/second is not owned by redis"
ok "active, READY, status: $(ns systemctl show -P StatusText "$unit2"); state in /var/lib/redis-guardian/second"
gpid_2=$(ns systemctl show -P MainPID "$unit2")

preflight_step redis-server.service redis-guardian-preflight.service rcli

say "a real fault: the data dir belongs to root, BGSAVE fails, MISCONF (both instances)"
swb() { "$@" config get stop-writes-on-bgsave-error | tail -n 1; }
if [ "$(swb rcli)" != yes ] || [ "$(swb rcli2)" != yes ]; then fail "stop-writes-on-bgsave-error is not yes before the fault"; fi
rcli set install-test before >/dev/null
rcli2 set install-test before >/dev/null
fault_at=$(ns date +%s)
ns chown root:root /var/lib/redis
bg1=$(rcli bgsave)
rcli2 bgsave >/dev/null
lifted=
for _ in $(seq 100); do
	if [ "$(swb rcli)" = no ] && [ "$(swb rcli2)" = no ]; then
		lifted=1
		break
	fi
	sleep 0.2
done
[ -n "$lifted" ] || fail "the guardians did not set stop-writes-on-bgsave-error no within 20 s (main: $(swb rcli), second: $(swb rcli2))"
ok "stop-writes-on-bgsave-error no on both after $(($(ns date +%s) - fault_at)) s"
[ "$(rcli2 set install-test during)" = OK ] || fail "writes to the second Redis are still rejected"
ns journalctl -u "$unit2" --since "@$fault_at" -o cat | grep 'stop-writes-on-bgsave-error no' >/dev/null ||
	fail "journalctl -u $unit2 shows no entry of the remedy"
ns sh -c 'ls /var/lib/redis-guardian/second/*.ledger.json' >/dev/null 2>&1 || fail "no ledger in /var/lib/redis-guardian/second"
ok "$unit2 remediated its Redis, its ledger is in /var/lib/redis-guardian/second"
# The guardian predicts the fault from the data dir's owner and may lift MISCONF
# before the BGSAVE child has failed: wait for Redis to record the failure.
failed=
for _ in $(seq 50); do
	if [ "$(rcli info persistence | tr -d '\r' | grep '^rdb_last_bgsave_status:')" = rdb_last_bgsave_status:err ]; then
		failed=1
		break
	fi
	sleep 0.2
done
[ -n "$failed" ] ||
	fail "the fault did not make the save fail within 10 s (BGSAVE: $bg1; $(rcli info persistence | tr -d '\r' | grep -E '^(rdb_|aof_enabled|aof_rewrite_in)' | tr '\n' ' '); log: $(tail -n 15 "$root/var/log/redis/redis-server.log"))"
[ "$(rcli set install-test during)" = OK ] || fail "writes are still rejected"
ok "the save still fails, writes are accepted"
entry=$(ns journalctl -u "$unit" --since "@$fault_at" -o cat | grep 'stop-writes-on-bgsave-error no' | sed -n 1p)
[ -n "$entry" ] || fail "journalctl -u $unit shows no entry of the remedy"
ok "journal: ${entry:0:200}"
n=$(ns journalctl -u "$unit" --since "@$fault_at" SETTING=stop-writes-on-bgsave-error -o json | grep -c '"MESSAGE_ID"' || true)
[ "$n" -gt 0 ] || fail "the remedy's journal entry has no MESSAGE_ID/SETTING fields"
x=$(ns journalctl -x -u "$unit" --since "@$fault_at" SETTING=stop-writes-on-bgsave-error --no-pager | grep '░░ Subject' | sed -n 1p)
[ -n "$x" ] || fail "journalctl -x shows no catalog text for the remedy entry (catalog not installed?)"
ok "native entry with SETTING and MESSAGE_ID; journalctl -x: ${x:0:120}"
ns sh -c 'ls /var/lib/redis-guardian/*.ledger.json' >/dev/null 2>&1 || fail "no ledger in /var/lib/redis-guardian"
ok "the change is in the ledger"

say "systemctl reload"
reload_at=$(ns date +%s)
ns systemctl reload "$unit" || fail "systemctl reload failed"
sleep 1
[ "$(ns systemctl is-active "$unit")" = active ] || fail "$unit is not active after reload"
[ "$(ns systemctl show -P MainPID "$unit")" = "$gpid" ] || fail "reload restarted the process"
ns journalctl -u "$unit" --since "@$reload_at" -o cat | grep "^Reloaded $unit" >/dev/null || fail "systemd did not log 'Reloaded $unit'"
ok "active, same pid, systemd logged 'Reloaded $unit'"
r=$(ns journalctl -u "$unit" _PID="$gpid" --since "@$reload_at" -o cat | grep -i 'reload' | sed -n 1p)
[ -n "$r" ] || fail "the guardian did not log the reload"
ok "guardian: ${r:0:160}"

say "upgrade to $new_version keeps a modified config"
echo "# install-test: a local change that an upgrade must keep" >>"$cfg"
sum=$(md5sum <"$cfg")
upgrade_at=$(ns date +%s)
ns apt-get install -y /root/new.deb </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "apt-get install ./new.deb (upgrade) failed"; }
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
[ "$(ns dpkg-query -W -f '${Version}' redis-guardian)" = "$new_version" ] || fail "the installed version is not $new_version"
[ "$(md5sum <"$cfg")" = "$sum" ] || fail "the upgrade changed /etc/redis-guardian/config.yaml"
ok "config.yaml unchanged (/etc/redis-guardian: $(find "$root/etc/redis-guardian" -mindepth 1 -printf '%f '))"
[ "$(ns systemctl is-active "$unit")" = active ] || fail "$unit is not active after the upgrade"
gpid2=$(ns systemctl show -P MainPID "$unit")
[ "$gpid2" != "$gpid" ] || fail "the upgrade did not restart the guardian"
ns journalctl -u "$unit" _PID="$gpid2" --since "@$upgrade_at" -o verbose | grep -F "$new_version" >/dev/null ||
	fail "the restarted guardian does not report version $new_version"
ok "restarted (pid $gpid2), running $new_version"
[ "$(rcli config get stop-writes-on-bgsave-error | tail -n 1)" = no ] || fail "the held remedy was dropped across the upgrade"
ok "the remedy is still held across the restart"
[ "$(ns systemctl is-active "$unit2")" = active ] || fail "$unit2 is not active after the upgrade"
[ "$(ns systemctl show -P MainPID "$unit2")" != "$gpid_2" ] || fail "the upgrade did not restart $unit2"
[ "$(swb rcli2)" = no ] || fail "the held remedy of $unit2 was dropped across the upgrade"
ok "$unit2 restarted too, its remedy still held"

say "removal (the fault still holds): restore, stop, disable"
ns dpkg -r redis-guardian </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -r failed"; }
sed 's/^/   dpkg| /' "$work/dpkg.log"
[ "$(swb rcli)" = yes ] || fail "removal did not restore stop-writes-on-bgsave-error yes"
[ "$(swb rcli2)" = yes ] || fail "removal did not restore stop-writes-on-bgsave-error yes on the second Redis ($unit2's ledger)"
ok "stop-writes-on-bgsave-error is yes again on both"
for u in "$unit" "$unit2"; do
	st=$(ns systemctl is-active "$u" || true)
	[ "$st" = inactive ] || [ "$st" = unknown ] || [ "$st" = failed ] || fail "$u is $st after removal"
	[ ! -e "$root/etc/systemd/system/multi-user.target.wants/$u" ] || fail "$u is still enabled"
	ok "$u is $st and not enabled"
done
if ns sh -c 'ls /var/lib/redis-guardian/*.ledger.json /var/lib/redis-guardian/*/*.ledger.json' >/dev/null 2>&1; then fail "a ledger still lists changes"; fi
[ -f "$cfg" ] || fail "removal (not purge) deleted the config"
ok "ledger empty, config kept"
ns chown redis:redis /var/lib/redis

say "reinstall after removal (config-files state): enabled and started again"
ns apt-get install -y /root/new.deb </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "apt-get install ./new.deb (reinstall) failed"; }
[ "$(ns systemctl is-enabled "$unit")" = enabled ] || fail "$unit is not enabled again after the reinstall"
[ "$(ns systemctl is-active "$unit")" = active ] || fail "$unit is not active after the reinstall"
[ "$(md5sum <"$cfg")" = "$sum" ] || fail "the reinstall changed config.yaml"
ok "enabled, active, config.yaml still the admin's"
guardian_ok=1

say "purge"
ns dpkg -P redis-guardian </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -P failed"; }
[ ! -e "$root/var/lib/redis-guardian" ] || fail "purge left /var/lib/redis-guardian"
[ ! -e "$cfg" ] || fail "purge left /etc/redis-guardian/config.yaml"
[ -e "$cfg2" ] || fail "purge removed the admin's own /etc/redis-guardian/second.yaml"
ok "/var/lib/redis-guardian and config.yaml are gone; the admin's second.yaml stays (not the package's)"

say "rpm: install $(basename "$old_rpm") (Debian's rpm, --nodeps)"
ns systemctl disable --now "$unit2" >/dev/null 2>&1 || true
cp "$work/config.seed" "$cfg"
# Debian 12's rpm refuses to run on a dpkg system without --force-debian; Debian
# 13's knows no such option.
rpm_opts=(--nodeps)
if ns rpm --help 2>/dev/null | grep -- --force-debian >/dev/null; then rpm_opts+=(--force-debian); fi
rpmi() { ns rpm "${rpm_opts[@]}" "$@" </dev/null >"$work/rpm.log" 2>&1 || { cat "$work/rpm.log" >&2; fail "rpm $* failed"; }; }
rpmi -i /root/old.rpm
[ "$(ns systemctl is-enabled "$unit")" = enabled ] || fail "rpm: $unit is not enabled after the first install"
[ "$(ns systemctl is-active "$unit")" = active ] || fail "rpm: $unit is not active after the first install"
[ -f "$root/etc/sysconfig/redis-guardian" ] || fail "rpm: no /etc/sysconfig/redis-guardian"
grep -q "^  - addr: 127.0.0.1:$REDIS_PORT\$" "$cfg" || fail "rpm: the install replaced the admin's config.yaml"
gpid=$(ns systemctl show -P MainPID "$unit")
ok "enabled, active (pid $gpid), /etc/sysconfig/redis-guardian, the admin's config.yaml kept"

say "rpm: upgrade to $(basename "$new_rpm")"
rpmi -U /root/new.rpm
[ "$(ns rpm -q --qf '%{VERSION}' redis-guardian)" = "$new_version" ] || fail "rpm: the installed version is not $new_version"
[ "$(ns systemctl is-active "$unit")" = active ] || fail "rpm: $unit is not active after the upgrade"
[ "$(ns systemctl show -P MainPID "$unit")" != "$gpid" ] || fail "rpm: the upgrade did not restart the guardian"
ok "restarted (pid $(ns systemctl show -P MainPID "$unit")), $new_version"

say "rpm: erase while a fault holds"
fault_at=$(ns date +%s)
ns chown root:root /var/lib/redis
rcli bgsave >/dev/null
for _ in $(seq 100); do
	[ "$(swb rcli)" = no ] && break
	sleep 0.2
done
[ "$(swb rcli)" = no ] || fail "rpm: the guardian did not lift MISCONF"
ok "stop-writes-on-bgsave-error no after $(($(ns date +%s) - fault_at)) s"
rpmi -e redis-guardian
[ "$(swb rcli)" = yes ] || fail "rpm: erase did not restore stop-writes-on-bgsave-error yes; rpm said: $(cat "$work/rpm.log")"
st=$(ns systemctl is-active "$unit" || true)
[ "$st" != active ] || fail "rpm: $unit still runs after erase"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/$unit" ] || fail "rpm: $unit is still enabled"
[ ! -e "$root/var/lib/redis-guardian" ] || fail "rpm: erase left /var/lib/redis-guardian with an empty ledger"
ok "restored, $unit $st and not enabled, /var/lib/redis-guardian removed"
ns chown redis:redis /var/lib/redis

say "power off"
