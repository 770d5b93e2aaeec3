#!/usr/bin/env bash
# The redis-guardian demo: a throwaway Redis, a real fault under write load, and the
# guardian keeping it writable. Cleans up after itself, also on Ctrl-C.
set -euo pipefail
BIN=${1:-bin/redis-guardian}
BIN=$(readlink -f "$BIN")
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it starts Redis as the redis user and changes its process limit)" >&2
  exit 1
fi
id redis >/dev/null 2>&1 || { echo "demo: the redis user is missing (apt-get install redis-server)" >&2; exit 1; }

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
asredis="setpriv --reuid=redis --regid=redis --init-groups"
dir=$(mktemp -d /tmp/redis-guardian-demo.XXXXXX)
chmod 0755 "$dir"; mkdir "$dir/data" "$dir/state"; chown redis:redis "$dir" "$dir/data"
sock="$dir/redis.sock"
gpid='' rpid='' wpid=''
cleanup() {
  set +e
  [ -n "$wpid" ] && kill "$wpid" 2>/dev/null
  [ -n "$gpid" ] && kill "$gpid" 2>/dev/null && wait "$gpid" 2>/dev/null
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && sleep 0.3
  rm -rf "$dir"
}
trap cleanup EXIT
trap "exit 130" INT TERM

bold "1. a throwaway redis-server as the redis user in $dir (save 900 1, stop-writes-on-bgsave-error yes)"
$asredis redis-server --port 0 --unixsocket "$sock" --unixsocketperm 777 --dir "$dir/data" \
  --logfile "$dir/redis.log" --save "900 1" --maxmemory 256mb --daemonize yes --pidfile "$dir/redis.pid"
for _ in $(seq 50); do redis-cli -s "$sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
rpid=$(cat "$dir/redis.pid")
redis-cli -s "$sock" debug populate 20000 demo 100 >/dev/null
echo "redis pid $rpid, 20000 keys"

cat >"$dir/guardian.yaml" <<YAML
interval: 1s
state_dir: $dir/state
instances:
  - name: demo
    addr: $sock
    remedies:
      bgsave_retry: {initial_backoff: 1s, max_backoff: 2s}
YAML

bold "2. redis-guardian check: the diagnosis before anything goes wrong"
"$BIN" check -c "$dir/guardian.yaml" || true

bold "3. the guardian starts watching (its log lines follow)"
"$BIN" run -c "$dir/guardian.yaml" > >(sed -u 's/^/   guardian| /') 2>&1 &
gpid=$!
sleep 1.5

bold "4. a client writes continuously (SET every 5 ms)"
redis-cli -s "$sock" -r 2400 -i 0.005 SET demo:counter x >"$dir/writes.log" 2>&1 &
wpid=$!
sleep 1

bold "5. FAULT: the redis user hits its process limit, so fork fails (prlimit --nproc=1), and a BGSAVE is due"
hard=$($asredis prlimit --pid "$rpid" --nproc -o HARD --noheadings | tr -d ' ')
$asredis prlimit --pid "$rpid" --nproc=1:
redis-cli -s "$sock" BGSAVE || true
sleep 2
echo "   redis log: $(grep -a 'fork' "$dir/redis.log" | tail -1)"
echo "   stop-writes-on-bgsave-error is now: $(redis-cli -s "$sock" config get stop-writes-on-bgsave-error | tail -1)"
echo "   ledger (written before the change):"; sed 's/^/     /' "$dir"/state/*.json 2>/dev/null || echo "     (none)"

bold "6. redis-guardian check during the outage"
"$BIN" check -c "$dir/guardian.yaml" | head -8 || true

bold "7. the cause is fixed (process limit restored); nobody touches Redis"
$asredis prlimit --pid "$rpid" --nproc="$hard":
for _ in $(seq 100); do
  st=$(redis-cli -s "$sock" config get stop-writes-on-bgsave-error | tail -1)
  ok=$(redis-cli -s "$sock" info persistence | tr -d '\r' | grep rdb_last_bgsave_status)
  [ "$st" = yes ] && [ "$ok" = rdb_last_bgsave_status:ok ] && break
  sleep 0.2
done
sleep 0.5
wait "$wpid" 2>/dev/null || true; wpid=
bold "8. the outcome"
echo "   $ok; stop-writes-on-bgsave-error is $(redis-cli -s "$sock" config get stop-writes-on-bgsave-error | tail -1) again"
# What the ledger holds now: oom_shield's oom-score-adj is a standing hold (kept
# for as long as the instance forks, given back when the guardian stops).
held=$(grep -ho '"setting": "[^"]*"' "$dir"/state/*.ledger.json 2>/dev/null | sed 's/"setting": //; s/"//g' | tr '\n' ' ')
echo "   ledger while the guardian runs: ${held:-empty}"
total=$(grep -c . "$dir/writes.log" || true); rejected=$(grep -c MISCONF "$dir/writes.log" || true)
echo "   writes: $total sent, $rejected rejected with MISCONF"
echo "   (without the guardian every write from the fault to the fix would have been rejected)"
kill "$gpid" 2>/dev/null; wait "$gpid" 2>/dev/null || true; gpid=
# The state dir keeps the ledger's lock and reserve; an empty ledger has no file.
left=$(find "$dir/state" -name '*.ledger.json' | wc -l)
if [ "$left" -eq 0 ]; then echo "   ledger after the guardian stopped: empty (everything given back)"; else echo "   ledger after the guardian stopped: $left file(s) still hold changes"; fi
