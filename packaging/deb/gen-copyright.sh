#!/bin/sh
# Writes the Debian copyright file for a built binary to stdout: the header, the
# project's own terms, and the Go modules statically linked into BINARY (from
# `go version -m`), each with the license found in its module directory.
# Usage: packaging/deb/gen-copyright.sh BINARY
set -eu
bin=$1
here=$(dirname "$0")
modcache=$(go env GOMODCACHE)

license_of() {
	dir=$1
	for f in "$dir"/LICENSE* "$dir"/LICENCE* "$dir"/COPYING*; do
		[ -f "$f" ] || continue
		if grep -q 'Apache License' "$f"; then
			echo Apache-2.0
		elif grep -q 'Permission is hereby granted, free of charge' "$f"; then
			echo Expat
		elif grep -q 'Mozilla Public License' "$f"; then
			echo MPL-2.0
		elif grep -q 'Redistribution and use in source and binary forms' "$f"; then
			if grep -qi 'neither the name' "$f"; then echo BSD-3-clause; else echo BSD-2-clause; fi
		else
			echo "see $(basename "$f") in the module"
		fi
		return 0
	done
	echo unknown
}

cat "$here/copyright.head"
cat <<'TXT'

Files: *
Copyright: 2026 The redis-guardian authors
License: Apache-2.0
Comment: The binary /usr/bin/redis-guardian is a statically linked Go program.
 It contains the Go standard library (BSD-3-clause, The Go Authors) and these
 Go modules, each under the license named:
TXT
go version -m "$bin" | awk '$1 == "dep" || $1 == "=>" { print $2, $3 }' | while read -r mod ver; do
	enc=$(printf '%s' "$mod" | sed 's/[A-Z]/!&/g' | tr '[:upper:]' '[:lower:]')
	printf ' %s %s: %s\n' "$mod" "$ver" "$(license_of "$modcache/$enc@$ver")"
done
cat <<'TXT'

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License. You may obtain a copy of
 the License at https://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 License for the specific language governing permissions and limitations under
 the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0 can be
 found in "/usr/share/common-licenses/Apache-2.0". The license of each Go
 module listed above is found in that module's source.
TXT
