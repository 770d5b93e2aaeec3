# Shared by the scripts that fetch Debian packages: the machine's Debian mirror.
# shellcheck shell=bash

# debian_mirror SUITE prints the first URI of the machine's apt sources that serves
# SUITE (never a hard-coded host). The same archive serves the other suites
# (bookworm-backports, trixie).
debian_mirror() {
	local SUITE=$1
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk -v suite="$SUITE" '
				function flush() {
					if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ")) print uris
					types = ""; suites = ""; uris = ""
				}
				/^[[:space:]]*$/ { flush(); next }
				/^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
				/^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
				/^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $1 }
				END { flush() }' "$f"
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			awk -v suite="$SUITE" '$1 == "deb" {
				i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				if ($(i + 1) == suite) print $i }' "$f"
		done
	} | sed -n 1p
}
