package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// inject starts fault st in sc and returns what clears it (nil: sc's cleanups
// are enough, or the fault is instantaneous). A Fatalf of testredis ends the
// injection; sc.Close() undoes whatever part of it was done.
func (k *soak) inject(sc *scope, st step, rec *faultRec) func() {
	if st.Kind == kGuardianKill {
		if err := k.g.signal(syscall.SIGKILL, 10*time.Second); err != nil {
			sc.Fatalf("%v", err)
		}
		return func() {
			if err := k.g.start(); err != nil {
				k.violation("guardian", "could not start the guardian again: "+err.Error())
			}
		}
	}
	srv, c := k.srvs[st.Inst], k.clients[st.Inst]
	switch st.Kind {
	case kForkFail:
		srv.FailFork(sc)
		bgsave(c)
	case kDiskFull:
		srv.FillDisk(sc)
		bgsave(c)
	case kEACCES:
		srv.DenyDir(sc)
		bgsave(c)
	case kKillChild:
		// 200 µs a key: a child of the 20000-key dataset lives about 4 s.
		mustDo(sc, c, "CONFIG", "SET", "rdb-key-save-delay", "200")
		sc.Cleanup(func() { _ = do(c, "CONFIG", "SET", "rdb-key-save-delay", "0") })
		bgsave(c)
		srv.KillChild(sc, syscall.SIGKILL)
	case kRedisRestart:
		k.obs.pause(st.Inst)
		defer k.obs.restarted(st.Inst)
		srv.Restart(sc)
	case kOperatorSet:
		rec.note = k.operatorSet(sc, st.Inst)
		rec.revert = rec.note == "stop-writes-on-bgsave-error yes (revert of a hold)"
	case kConfigRewrite:
		mustDo(sc, c, "CONFIG", "REWRITE")
	case kMonitor:
		srv.StuckMonitor(sc)
		return noise(c)
	case kOOMGrowth:
		return k.oomGrowth(sc, st.Inst)
	case kReplica:
		_, port, _ := net.SplitHostPort(k.srvs[0].Addr)
		mustDo(sc, c, "REPLICAOF", "127.0.0.1", port)
		return func() { mustDo(sc, c, "REPLICAOF", "NO", "ONE") }
	default:
		sc.Fatalf("no injection for %s", st.Kind)
	}
	return nil
}

// operatorSet is an operator's CONFIG SET of a setting the guardian holds: a
// stop-writes-on-bgsave-error hold the guardian has seen live is set back to yes
// (it must not take it again until a save succeeds); otherwise oom-score-adj is
// set to absolute, a value of the operator's that the guardian must leave alone.
func (k *soak) operatorSet(sc *scope, i int) string {
	c := k.clients[i]
	ledger, err := readLedger(k.g.stateDir, k.names[i])
	if err != nil {
		sc.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	live, err := configGet(ctx, c)
	var info map[string]string
	if err == nil {
		info, err = infoFields(ctx, c)
	}
	cancel()
	if err != nil {
		sc.Fatalf("%v", err)
	}
	// The live value too: after a restart of Redis the ledger still names the
	// old process's hold until the guardian's next tick, and setting yes over
	// a yes would be no revert (the soak's seed 20261206 did that once).
	// Not on a replica: there the revert makes Redis exit at the master's next
	// write after a failed save (replica_guard's reason), and the instance
	// would be gone until the next restart (seed 20261206 lost one for 3 min).
	if e, ok := named(ledger, "stop-writes-on-bgsave-error"); ok && e.Applied && e.Value == "no" && e.Remedy == "stop_writes" &&
		live["stop-writes-on-bgsave-error"] == "no" && info["role"] == "master" {
		mustDo(sc, c, "CONFIG", "SET", "stop-writes-on-bgsave-error", "yes")
		last, _ := strconv.ParseInt(info["rdb_last_save_time"], 10, 64)
		k.obs.operatorRevert(i, last)
		return "stop-writes-on-bgsave-error yes (revert of a hold)"
	}
	if k.obs.expectedOf(i, "oom-score-adj") == "absolute" {
		return "nothing (oom-score-adj is the operator's already)"
	}
	mustDo(sc, c, "CONFIG", "SET", "oom-score-adj", "absolute")
	k.obs.operatorSet(i, "oom-score-adj", "absolute")
	return "oom-score-adj absolute"
}

// oomGrowth lowers maxmemory to 1 MiB above what Redis uses and grows the dataset
// with 1 KiB values until writes fail with OOM; clearing deletes the growth and
// gives maxmemory back.
func (k *soak) oomGrowth(sc *scope, i int) func() {
	c := k.clients[i]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	used, err := c.InfoMap(ctx, "memory").Result()
	cancel()
	if err != nil {
		sc.Fatalf("INFO memory: %v", err)
	}
	n, _ := strconv.ParseInt(used["Memory"]["used_memory"], 10, 64)
	mustDo(sc, c, "CONFIG", "SET", "maxmemory", strconv.FormatInt(n+1<<20, 10))
	gctx, stop := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		keys := 0
		val := make([]byte, 1024)
		for gctx.Err() == nil && keys < 20000 {
			if do(c, "SET", "grow:"+strconv.Itoa(keys), val) == nil {
				keys++
			}
			time.Sleep(500 * time.Microsecond)
		}
		done <- keys
	}()
	return func() {
		stop()
		keys := <-done
		for j := 0; j < keys; j += 500 {
			args := []any{"UNLINK"}
			for n := j; n < min(j+500, keys); n++ {
				args = append(args, "grow:"+strconv.Itoa(n))
			}
			_ = do(c, args...)
		}
		mustDo(sc, c, "CONFIG", "SET", "maxmemory", "64mb")
	}
}

// bgsave asks for a save, as an operator or Redis's own save point would; an
// error (a child already runs, the fork failed) is part of the fault.
func bgsave(c *redis.Client) { _ = do(c, "BGSAVE") }

func do(c *redis.Client, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Err()
}

func mustDo(sc *scope, c *redis.Client, args ...any) {
	if err := do(c, args...); err != nil && !errors.Is(err, redis.Nil) {
		sc.Fatalf("%v: %v", args, err)
	}
}

// noise writes 8 KiB values (100 keys, about 4 MB/s) until the returned func is
// called: under it a MONITOR that never reads fills maxmemory within seconds.
func noise(c *redis.Client) func() {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		val := make([]byte, 8192)
		for n := 0; ctx.Err() == nil; n++ {
			_ = do(c, "SET", "noise:"+strconv.Itoa(n%100), val)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() { stop(); <-done }
}
