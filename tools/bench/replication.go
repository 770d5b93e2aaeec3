package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// Replication modes: Redis alone, or with the guardian on every instance.
const (
	replAlone    = "Redis alone"
	replGuardian = "with the guardian"
)

// replicationResult counts, for one mode, what fork faults did to a replicated
// Redis under the master's write load.
type replicationResult struct {
	crashRounds, crashes       int // fork faults on the replica, replica panics
	failoverRounds, failovers  int // fork faults on the master, Sentinel failovers
	crashErrors, failoverFails int // rounds that could not be measured
}

// measureReplication runs rounds fork faults of each kind in each mode,
// alternating the modes so a busy spell of the machine hits both alike.
func measureReplication(t *benchT, rounds int, verbose bool) map[string]*replicationResult {
	out := map[string]*replicationResult{replAlone: {}, replGuardian: {}}
	for i := range rounds {
		for _, mode := range []string{replAlone, replGuardian} {
			r := out[mode]
			var crashed bool
			if err := scenario(fmt.Sprintf("replica crash %d / %s", i+1, mode), verbose, func(t *benchT) { crashed = replicaCrashRound(t, mode == replGuardian) }); err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				r.crashErrors++
			} else {
				r.crashRounds++
				if crashed {
					r.crashes++
				}
			}
			var failedOver bool
			if err := scenario(fmt.Sprintf("failover %d / %s", i+1, mode), verbose, func(t *benchT) { failedOver = failoverRound(t, mode == replGuardian) }); err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				r.failoverFails++
			} else {
				r.failoverRounds++
				if failedOver {
					r.failovers++
				}
			}
		}
	}
	if n := out[replAlone].crashErrors + out[replGuardian].crashErrors + out[replAlone].failoverFails + out[replGuardian].failoverFails; n > 0 {
		t.Errorf("%d replication rounds could not be measured", n)
	}
	return out
}

// replicaOf starts a replica of master (both with Debian's save points and
// stop-writes-on-bgsave-error yes) and waits for its link.
func replicaOf(t *benchT, master *testredis.Server, opts testredis.Options) *testredis.Server {
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatalf("master address: %v", err)
	}
	opts.Args = append(opts.Args, "--replicaof", host, port)
	replica := testredis.Start(t, opts)
	replica.WaitFor(t, "the replica's link", 20*time.Second, func(info map[string]string) bool { return info["master_link_status"] == "up" })
	return replica
}

// replicaCrashRound: a fork fault on the replica while the master takes about
// 1000 writes/s; it reports whether the replica panicked ("Replica was unable to
// write command to disk").
func replicaCrashRound(t *benchT, guarded bool) bool {
	master := testredis.Start(t, testredis.Options{TCP: true})
	replica := replicaOf(t, master, testredis.Options{})
	rc := replica.Client(t)
	if guarded {
		startInproc(t, replica, inprocOpts{interval: time.Second})
		waitSetting(t, replica, "stop-writes-on-bgsave-error", "no") // replica_guard, before any fault
	}
	w := master.StartWriter(t, time.Millisecond)
	waitOK(t, w, 50)
	replica.FailFork(t)
	_ = rc.Do(context.Background(), "BGSAVE").Err() // fails at fork
	time.Sleep(1500 * time.Millisecond)             // about 1500 streamed writes
	w.Stop()
	log, err := os.ReadFile(replica.LogFile)
	if err != nil {
		t.Fatalf("read the replica's log: %v", err)
	}
	return strings.Contains(string(log), "unable to write command to disk")
}

// failoverRound: a fork fault on a Sentinel-watched master (down-after-milliseconds
// 2000) under write load; it reports whether Sentinel failed over within three
// down-after periods.
func failoverRound(t *benchT, guarded bool) bool {
	cfg := testredis.Options{TCP: true, ConfigText: "stop-writes-on-bgsave-error yes\nrepl-diskless-sync-delay 0\n"}
	master := testredis.Start(t, cfg)
	replica := replicaOf(t, master, cfg)
	sent := testredis.StartSentinel(t, master.Addr)
	sent.WaitReplica(replica.Addr)
	if guarded {
		startInproc(t, master, inprocOpts{interval: time.Second})
		startInproc(t, replica, inprocOpts{interval: time.Second})
		waitSetting(t, replica, "stop-writes-on-bgsave-error", "no")
	}
	w := master.StartWriter(t, time.Millisecond)
	waitOK(t, w, 50)
	master.FailFork(t)
	_ = master.Client(t).Do(context.Background(), "BGSAVE").Err()
	time.Sleep(3 * testredis.SentinelDownAfter)
	w.Stop()
	return len(sent.Events("+switch-master")) > 0
}

// waitSetting waits until a CONFIG setting has a value.
func waitSetting(t *benchT, srv *testredis.Server, name, want string) {
	c := srv.Client(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		kv, err := c.ConfigGet(context.Background(), name).Result()
		if err == nil && kv[name] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become %q within 20s (%v, %v)", name, want, kv, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOK waits until the writer has n successful writes.
func waitOK(t *benchT, w *testredis.Writer, n int) {
	deadline := time.Now().Add(20 * time.Second)
	for w.Stats().OK < n {
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not reach %d ok writes", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replicationSection is figure 5: the side-by-side table.
func (r *report) replicationSection(p func(string, ...any)) {
	a, g := r.repl[replAlone], r.repl[replGuardian]
	if a == nil || g == nil {
		return
	}
	p("## 6. Replicas and Sentinel: fork faults, Redis alone vs with the guardian\n\n")
	p("Master and replica with Debian's defaults (save points, `stop-writes-on-bgsave-error yes`), the master taking about 1000 writes/s. A fork fault on the replica (nproc limit, BGSAVE); a fork fault on a master watched by a real Sentinel (`down-after-milliseconds 2000`, quorum 1), observed for three down-after periods. With the guardian, one runs beside each instance with the shipped defaults.\n\n")
	p("| | %s | %s | goal with the guardian |\n|---|---|---|---|\n", replAlone, replGuardian)
	p("| replica crashes (\"Replica was unable to write command to disk\") | %d of %d | %d of %d | 0 |\n", a.crashes, a.crashRounds, g.crashes, g.crashRounds)
	p("| Sentinel failovers | %d of %d | %d of %d | 0 |\n\n", a.failovers, a.failoverRounds, g.failovers, g.failoverRounds)
}
