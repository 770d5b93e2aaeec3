#!/usr/bin/env bash
# Fails when a tracked file is larger than 1 MiB: build outputs (test binaries,
# profiles, packages) never belong in the repository; data files that large are a
# sign of the same mistake.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((1024 * 1024))
bad=0
while IFS= read -r -d '' f; do
	[ -f "$f" ] || continue
	size=$(stat -c %s "$f")
	if [ "$size" -gt "$limit" ]; then
		echo "tracked file $f is $size bytes (limit $limit): remove it from git and ignore it" >&2
		bad=1
	fi
done < <(git ls-files -z)
exit $bad
