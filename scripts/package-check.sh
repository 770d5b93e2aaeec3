#!/usr/bin/env bash
# Checks the built packages and the systemd units without installing anything:
# dpkg-deb -I/-c (contents, conffiles), lintian (errors fail), rpm -qip/-qlp/--scripts
# (contents, %config(noreplace)), shellcheck on the maintainer scripts, the packaged
# binary, config, man page, journal catalog and sysusers.d entry, systemd-analyze
# verify on both units (any warning fails) and systemd-analyze security --offline
# (the exposure must match README.md).
# Usage: scripts/package-check.sh DEB RPM   (make package-check builds and runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "package-check: FAIL: $*" >&2; exit 1; }
step() { printf '\n== package-check: %s\n' "$*"; }

[ $# -eq 2 ] || fail "usage: $0 DEB RPM"
deb=$1 rpm=$2
[ -f "$deb" ] || fail "no deb at $deb (run make package)"
[ -f "$rpm" ] || fail "no rpm at $rpm (run make package)"

# The tools: Debian packages, installed when missing and running as root.
missing=()
for pair in dpkg-deb:dpkg lintian:lintian rpm:rpm shellcheck:shellcheck systemd-analyze:systemd journalctl:systemd groff:groff-base; do
	command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || fail "missing ${missing[*]}; run as root or: apt-get install ${missing[*]}"
	echo "package-check: installing ${missing[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

tmp=$(mktemp -d /tmp/redis-guardian-package-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# What both packages must contain.
common_paths=(
	/usr/bin/redis-guardian
	/usr/lib/systemd/system/redis-guardian.service
	/usr/lib/systemd/system/redis-guardian@.service
	/usr/lib/systemd/system/redis-guardian-valkey.service
	/usr/lib/systemd/system/redis-guardian-valkey@.service
	/etc/redis-guardian/valkey.yaml
	/usr/lib/sysusers.d/redis-guardian.conf
	/usr/lib/systemd/catalog/redis-guardian.catalog
	/usr/share/redis-guardian/prometheus/redis-guardian.rules.yml
	/usr/share/redis-guardian/grafana/redis-guardian.json
	/usr/share/bash-completion/completions/redis-guardian
	/usr/share/man/man1/redis-guardian.1.gz
	/usr/share/doc/redis-guardian/README.md
	/etc/redis-guardian/config.yaml
)

step "dpkg-deb -I $deb"
dpkg-deb -I "$deb"
dpkg-deb -e "$deb" "$tmp/control"
for f in /etc/redis-guardian/config.yaml /etc/default/redis-guardian; do
	grep -qx "$f" "$tmp/control/conffiles" || fail "deb: $f is not a conffile"
done
for s in postinst prerm postrm; do
	[ -x "$tmp/control/$s" ] || fail "deb: maintainer script $s missing"
done

step "dpkg-deb -c $deb"
dpkg-deb -c "$deb" | tee "$tmp/deb.list"
for p in "${common_paths[@]}" /etc/default/redis-guardian /usr/share/doc/redis-guardian/copyright /usr/share/doc/redis-guardian/changelog.gz; do
	grep -q " \.$p\$" "$tmp/deb.list" || fail "deb: $p is missing"
done
grep -q ' \./etc/sysconfig/' "$tmp/deb.list" && fail "deb: contains /etc/sysconfig (rpm only)"

step "lintian $deb (errors fail; overrides: packaging/lintian-overrides)"
# As nobody when root: lintian warns against running as root.
lintian_cmd=(lintian --fail-on error --display-info)
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	cp "$deb" "$tmp/"
	chmod 0755 "$tmp"
	chmod 0644 "$tmp/$(basename "$deb")"
	(cd "$tmp" && setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$tmp" "${lintian_cmd[@]}" "$tmp/$(basename "$deb")") ||
		fail "lintian reported errors (above)"
else
	"${lintian_cmd[@]}" "$deb" || fail "lintian reported errors (above)"
fi
echo "lintian: no errors"

step "rpm -qip / -qlp / --scripts $rpm"
rpm -qip "$rpm"
rpm -qlp "$rpm" | tee "$tmp/rpm.list"
rpm -qp --scripts "$rpm" | tee "$tmp/rpm.scripts"
for p in "${common_paths[@]}" /etc/sysconfig/redis-guardian; do
	grep -qx "$p" "$tmp/rpm.list" || fail "rpm: $p is missing"
done
grep -q '^/etc/default/' "$tmp/rpm.list" && fail "rpm: contains /etc/default (deb only)"
grep -qx /usr/share/licenses/redis-guardian/LICENSE "$tmp/rpm.list" || fail "rpm: no license file"
for p in /usr/share/bash-completion/completions/redis-guardian /usr/share/zsh/site-functions/_redis-guardian; do
	grep -qx "$p" "$tmp/rpm.list" || fail "rpm: $p is missing"
done
[ "$(rpm -qp --qf '%{LICENSE}' "$rpm")" = Apache-2.0 ] || fail "rpm: License is $(rpm -qp --qf '%{LICENSE}' "$rpm"), not Apache-2.0"
# %config(noreplace): the flags contain c (config) and n (noreplace).
rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" >"$tmp/rpm.flags"
for f in /etc/redis-guardian/config.yaml /etc/sysconfig/redis-guardian; do
	grep -Eq "^$f [a-z]*c[a-z]*n|^$f [a-z]*n[a-z]*c" "$tmp/rpm.flags" || fail "rpm: $f is not %config(noreplace): $(grep "^$f " "$tmp/rpm.flags")"
done
for s in postinstall preuninstall postuninstall; do
	grep -q "^$s scriptlet" "$tmp/rpm.scripts" || fail "rpm: no $s scriptlet"
done

step "shellcheck (maintainer scripts and scripts/)"
shellcheck -s sh packaging/scripts/postinst packaging/scripts/prerm packaging/scripts/postrm
shellcheck -x scripts/package-check.sh scripts/install-test.sh scripts/pkg-version.sh scripts/dashboard-check.sh scripts/servers.sh scripts/lib/mirror.sh packaging/deb/gen-copyright.sh
echo "shellcheck: clean"

step "the packaged files"
mkdir "$tmp/root"
dpkg-deb -x "$deb" "$tmp/root"
"$tmp/root/usr/bin/redis-guardian" version
grep -qx 'License: Apache-2.0' "$tmp/root/usr/share/doc/redis-guardian/copyright" || fail "deb: the copyright file does not name Apache-2.0"
bash -n "$tmp/root/usr/share/bash-completion/completions/redis-guardian" || fail "deb: the bash completion does not parse"
head -1 "$tmp/root/usr/share/zsh/vendor-completions/_redis-guardian" | grep -qx '#compdef redis-guardian' || fail "deb: no zsh completion"
grep -q 'undecided' "$tmp/root/usr/share/doc/redis-guardian/copyright" && fail "deb: the copyright file still says undecided"
"$tmp/root/usr/bin/redis-guardian" check-config -c "$tmp/root/etc/redis-guardian/config.yaml"
manwarn=$(zcat "$tmp/root/usr/share/man/man1/redis-guardian.1.gz" | LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 2>&1)
[ -z "$manwarn" ] || fail "man page: groff warns: $manwarn"
catout=$(journalctl --root="$tmp/root" --update-catalog 2>&1) || fail "journal catalog: $catout"
[ -z "$catout" ] || fail "journal catalog: $catout"
journalctl --root="$tmp/root" --list-catalog >"$tmp/catalog.list" 2>&1 || fail "journalctl --list-catalog: $(cat "$tmp/catalog.list")"
sed -n 's/^-- \([0-9a-fA-F]\{32\}\).*/\1/p' "$tmp/root/usr/lib/systemd/catalog/redis-guardian.catalog" >"$tmp/catalog.ids"
while read -r id; do
	grep -qi "^$id " "$tmp/catalog.list" || fail "journal catalog: entry $id was not indexed by journalctl --update-catalog"
done <"$tmp/catalog.ids"
ids=$(wc -l <"$tmp/catalog.ids")
echo "journal catalog: all $ids entries indexed by journalctl --update-catalog"

# The sysusers.d entry creates the redis user on a system that has none yet.
mkdir -p "$tmp/sysroot/etc"
: >"$tmp/sysroot/etc/passwd"
: >"$tmp/sysroot/etc/group"
systemd-sysusers --root="$tmp/sysroot" "$tmp/root/usr/lib/sysusers.d/redis-guardian.conf" ||
	fail "systemd-sysusers rejected usr/lib/sysusers.d/redis-guardian.conf"
grep -q '^redis:x:[0-9]*:[0-9]*:Redis:/var/lib/redis:/usr/sbin/nologin$' "$tmp/sysroot/etc/passwd" ||
	fail "sysusers.d did not create the redis user: $(cat "$tmp/sysroot/etc/passwd")"
echo "sysusers.d: creates $(grep '^redis:' "$tmp/sysroot/etc/passwd")"

step "systemd-analyze verify (any warning fails)"
# The units as installed, but with ExecStart pointing at the packaged binary (the
# path must exist) and man pages looked up in the package (Documentation=man:...).
mkdir "$tmp/units"
units=(redis-guardian.service redis-guardian@.service redis-guardian-valkey.service redis-guardian-valkey@.service redis-guardian-preflight.service redis-guardian-valkey-preflight.service)
for u in "${units[@]}"; do
	sed "s|/usr/bin/redis-guardian|$tmp/root/usr/bin/redis-guardian|g" \
		"$tmp/root/usr/lib/systemd/system/$u" >"$tmp/units/$u"
done
verify_out=$(cd "$tmp/units" && MANPATH="$tmp/root/usr/share/man" SYSTEMD_LOG_COLOR=0 \
	systemd-analyze verify "${units[@]/#/./}" 2>&1) ||
	fail "systemd-analyze verify: $verify_out"
[ -z "$verify_out" ] || fail "systemd-analyze verify warned: $verify_out"
echo "systemd-analyze verify: all ${#units[@]} units clean"

step "systemd-analyze security --offline=yes"
for u in "${units[@]}"; do
	out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze security --offline=yes --no-pager "$tmp/root/usr/lib/systemd/system/$u" 2>&1) ||
		fail "systemd-analyze security $u: $out"
	printf '%s\n' "$out" | grep '✗' || true
	line=$(printf '%s\n' "$out" | grep 'Overall exposure level') || fail "systemd-analyze security $u: no exposure level in: $out"
	echo "$line"
	level=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
	# README.md records the number; a change of the units must update it.
	grep -qF "Overall exposure level for $u: $level" README.md ||
		fail "README.md does not record 'Overall exposure level for $u: $level' (update its Install section)"
done

printf '\npackage-check: all checks passed\n'
