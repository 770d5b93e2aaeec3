#!/usr/bin/env bash
# Go benchmarks of the hot paths, before and after: builds the test binaries of
# pkg/monitor and pkg/policy at REV (the code before the performance fixes) and at the
# work tree, then runs them alternately, COUNT times each and the order swapped every
# round, so a busy spell on a shared machine hits both sides alike. Writes
# OUT/before.txt and OUT/after.txt for benchstat, and builds OUT/redis-guardian-before.
#   usage: scripts/bench-ab.sh REV OUT [COUNT]
set -euo pipefail
rev=${1:?usage: bench-ab.sh REV OUT [COUNT]}
out=$(realpath -m "${2:?usage: bench-ab.sh REV OUT [COUNT]}")
count=${3:-6}
go=${GO:-go}
pkgs=(monitor policy)
rm -rf "$out/before-src"
mkdir -p "$out/before-src"
git archive "$rev" | tar -x -C "$out/before-src"
# The binary too, for the CPU/RSS comparison of tools/bench -guardian-before.
(cd "$out/before-src" && "$go" build -trimpath -o "$out/redis-guardian-before" ./cmd/redis-guardian)
for p in "${pkgs[@]}"; do
  (cd "$out/before-src" && "$go" test -c -o "$out/before-$p.test" "./pkg/$p")
  "$go" test -c -o "$out/after-$p.test" "./pkg/$p"
done
: >"$out/before.txt"
: >"$out/after.txt"
bench() { # side pkg: run from the package dir, where its testdata is
  (cd "pkg/$2" && "$out/$1-$2.test" -test.run '^$' -test.bench . -test.benchmem) >>"$out/$1.txt"
}
for i in $(seq "$count"); do
  for p in "${pkgs[@]}"; do
    if (( i % 2 )); then bench before "$p"; bench after "$p"; else bench after "$p"; bench before "$p"; fi
  done
done
