#!/bin/sh
# Prints a deb/rpm package version derived from git:
#   at a clean tag vX.Y.Z:         X.Y.Z
#   N commits after it:            X.Y.Z+git<N>.<sha>
#   no tag yet:                    0.0.0~git<commits>.<sha>
# with ".dirty" appended when the work tree has uncommitted changes. Each later
# commit sorts higher in both dpkg and rpm ordering.
set -eu
cd "$(dirname "$0")/.."
sha=$(git rev-parse --short=7 HEAD)
dirty=
if ! git diff --quiet HEAD -- 2>/dev/null; then
	dirty=.dirty
fi
if tag=$(git describe --tags --match 'v[0-9]*' --abbrev=0 2>/dev/null); then
	base=${tag#v}
	n=$(git rev-list --count "$tag..HEAD")
	if [ "$n" -eq 0 ]; then
		echo "$base$dirty"
	else
		echo "$base+git$n.$sha$dirty"
	fi
else
	echo "0.0.0~git$(git rev-list --count HEAD).$sha$dirty"
fi
