#!/bin/sh
# fuzz.sh runs every fuzz target of the module, one at a time, for FUZZTIME each
# (default 10m), and prints a table of what each run did. The targets are found by
# grep, so a new one is never forgotten. One worker, at the lowest priority: the
# runs are long, and the machine is shared.
#
#   FUZZTIME=30s scripts/fuzz.sh            # every target
#   FUZZ=FuzzDecodeLedger scripts/fuzz.sh   # the targets whose name matches
#
# A failing input is written under the package's testdata/fuzz/FuzzX/ by go test:
# fix the parser, and commit that file so `go test` replays it. Each run's output
# is kept in dist/fuzz/<target>.log.
set -eu
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10m}
FUZZ=${FUZZ:-.}
out=dist/fuzz
mkdir -p "$out"
cache=$("$GO" env GOCACHE)/fuzz

targets=$(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\([a-z_]* \*testing\.F\)' cmd internal pkg tools 2>/dev/null |
	sed -E 's#^([^:]*)/[^/:]*:func (Fuzz[A-Za-z0-9_]*).*#\1 \2#' | grep -E " .*$FUZZ" | sort -k2)
[ -n "$targets" ] || { echo "fuzz.sh: no fuzz target matches $FUZZ" >&2; exit 1; }
echo "fuzz targets:"
echo "$targets" | sed 's/^/  /'

summary=$out/summary.txt
printf '%-22s %-20s %8s %12s %9s %8s %6s  %s\n' target package elapsed execs execs/s new corpus result >"$summary"
echo "$targets" | while read -r dir name; do
	log=$out/$name.log
	echo "== $name ($dir, $FUZZTIME) $(date -u +%H:%M:%S)"
	rc=0
	nice -n 19 "$GO" test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -parallel 1 "./$dir" >"$log" 2>&1 || rc=$?
	tail -n 3 "$log"
	last=$(grep '^fuzz: elapsed:' "$log" | tail -n 1)
	# fuzz: elapsed: 10m0s, execs: 1234 (2/sec), new interesting: 5 (total: 20)
	elapsed=$(echo "$last" | sed -nE 's/^fuzz: elapsed: ([^,]*),.*/\1/p')
	execs=$(echo "$last" | sed -nE 's/.*execs: ([0-9]+) .*/\1/p')
	new=$(echo "$last" | sed -nE 's/.*new interesting: ([0-9]+) .*/\1/p')
	total=$(echo "$last" | sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p')
	secs=$(echo "$elapsed" | awk '{ s = 0; if (match($0, /[0-9]+h/)) s += 3600 * substr($0, RSTART, RLENGTH - 1);
		if (match($0, /[0-9]+m/)) s += 60 * substr($0, RSTART, RLENGTH - 1);
		if (match($0, /[0-9.]+s/)) s += substr($0, RSTART, RLENGTH - 1); print s }')
	rate=$(awk -v e="${execs:-0}" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%d", e / s; else print 0 }')
	result=ok
	if [ "$rc" -ne 0 ]; then
		result="FAIL: $(grep -m1 'Failing input written to' "$log" | sed 's/.*written to //')"
	fi
	printf '%-22s %-20s %8s %12s %9s %8s %6s  %s\n' "$name" "$dir" "${elapsed:--}" "${execs:--}" "$rate" "${new:--}" \
		"${total:--}" "$result" >>"$summary"
	[ "$rc" -eq 0 ] || echo "$name failed: see $log" >&2
done
echo
echo "$(date -u +%Y-%m-%d) commit $(git rev-parse --short=12 HEAD) $("$GO" version | cut -d' ' -f3) FUZZTIME=$FUZZTIME (corpus: the run's total; the cache in $cache)"
cat "$summary"
! grep -q ' FAIL: ' "$summary"
