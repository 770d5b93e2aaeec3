#!/usr/bin/env bash
# Provisions the servers the tests run against, and writes their list to
# $CACHE/servers/servers.tsv (name, binary, chroot root or "-"), which
# internal/testredis reads:
#   redis-7.0   Debian 12's redis-server (installed by install-deps.sh)
#   valkey-8.0  bookworm-backports' valkey-server, unpacked with dpkg -x (it runs on
#               Debian 12's libc; the host's packages are left alone)
#   redis-8.0   Debian 13's redis-server  } in a debootstrapped trixie root, run with
#   valkey-8.1  Debian 13's valkey-server } chroot (they need Debian 13's libc)
# Downloads happen once: the trixie root is cached as a tarball, valkey-8.0 as an
# unpacked tree. Delete $CACHE/servers to provision again. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${REDIS_GUARDIAN_CI_CACHE:-/var/cache/redis-guardian-ci}
out=$CACHE/servers
manifest=$out/servers.tsv
# shellcheck source=scripts/lib/mirror.sh
. scripts/lib/mirror.sh

fail() {
	echo "servers: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, dpkg -x, mount)"
mkdir -p "$out"
m=
mirror() {
	[ -n "$m" ] || m=$(debian_mirror bookworm)
	[ -n "$m" ] || fail "no Debian mirror for bookworm in /etc/apt/sources.list*"
	echo "$m"
}

# valkey 8.0 from bookworm-backports, through a private apt state: the machine's
# sources and lists stay as they are.
valkey80=$out/valkey-8.0
if [ ! -x "$valkey80/usr/bin/valkey-server" ]; then
	echo "servers: fetching valkey-server 8.0 from bookworm-backports" >&2
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/debs"
	echo "deb $(mirror) bookworm-backports main" >"$tmp/sources.list"
	apt=(apt-get -qq -o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives" -o APT::Sandbox::User=root)
	"${apt[@]}" update >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "apt-get update (bookworm-backports) failed"; }
	(cd "$tmp/debs" && "${apt[@]}" download valkey-server valkey-tools) >>"$tmp/apt.log" 2>&1 ||
		{ cat "$tmp/apt.log" >&2; fail "apt-get download valkey-server valkey-tools failed"; }
	rm -rf "$valkey80.tmp"
	for f in "$tmp"/debs/*.deb; do dpkg -x "$f" "$valkey80.tmp"; done
	"$valkey80.tmp/usr/bin/valkey-server" --version >/dev/null || fail "the unpacked valkey-server 8.0 does not run on this host"
	mv "$valkey80.tmp" "$valkey80"
fi

# Debian 13 with redis-server 8.0 and valkey-server 8.1.
trixie=$out/trixie
tarball=$CACHE/trixie-minbase-redis-valkey.tar.gz
if [ ! -x "$trixie/usr/bin/redis-server" ] || [ ! -x "$trixie/usr/bin/valkey-server" ]; then
	if [ ! -f "$tarball" ]; then
		command -v debootstrap >/dev/null || {
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
				fail "cannot install debootstrap"
		}
		echo "servers: bootstrapping Debian 13 with redis-server and valkey-server from $(mirror) (about half a minute, once)" >&2
		rm -rf "$out/trixie.boot"
		debootstrap --variant=minbase --include=redis-server,redis-tools,valkey-server,valkey-tools trixie "$out/trixie.boot" "$(mirror)" \
			>"$out/debootstrap.log" 2>&1 || { tail -30 "$out/debootstrap.log" >&2; fail "debootstrap trixie failed"; }
		tar -C "$out/trixie.boot" --numeric-owner -czf "$tarball.tmp.$$" .
		mv "$tarball.tmp.$$" "$tarball"
		rm -rf "$out/trixie.boot"
	fi
	if [ -d "$trixie" ]; then
		# A root from an interrupted run: never let rm walk into a mount.
		mountpoint -q "$trixie/proc" && umount "$trixie/proc"
		rm -rf --one-file-system "$trixie"
	fi
	rm -rf --one-file-system "$trixie.tmp"
	mkdir -p "$trixie.tmp"
	tar -C "$trixie.tmp" --numeric-owner -xzf "$tarball"
	mv "$trixie.tmp" "$trixie"
fi
# Redis reads /proc (its memory, overcommit, THP): give the root one.
mountpoint -q "$trixie/proc" || mount -t proc proc "$trixie/proc"

{
	printf 'redis-7.0\t%s\t-\n' "$(command -v redis-server)"
	printf 'valkey-8.0\t%s\t-\n' "$valkey80/usr/bin/valkey-server"
	printf 'redis-8.0\t/usr/bin/redis-server\t%s\n' "$trixie"
	printf 'valkey-8.1\t/usr/bin/valkey-server\t%s\n' "$trixie"
} >"$manifest.tmp"
mv "$manifest.tmp" "$manifest"
