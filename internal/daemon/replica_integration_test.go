package daemon_test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// startPair starts a master (TCP) and a replica of it with Debian's defaults that
// matter here: save points and stop-writes-on-bgsave-error yes.
func startPair(t *testing.T, b testredis.Build) (master, replica *testredis.Server) {
	t.Helper()
	master = testredis.Start(t, testredis.Options{TCP: true, Build: b})
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	replica = testredis.Start(t, testredis.Options{Args: []string{"--replicaof", host, port}, Build: b})
	replica.WaitFor(t, "the replica's link to its master", waitLong, func(info map[string]string) bool {
		return info["master_link_status"] == "up"
	})
	return master, replica
}

// panicked reports whether the server's log shows the replica panic.
func panicked(t *testing.T, srv *testredis.Server) bool {
	t.Helper()
	b, err := os.ReadFile(srv.LogFile)
	if err != nil {
		t.Fatalf("read the replica's log: %v", err)
	}
	return strings.Contains(string(b), "unable to write command to disk")
}

// replicaFailsSave makes the replica's fork fail and a BGSAVE fail with it.
func replicaFailsSave(t *testing.T, replica *testredis.Server) (lift func()) {
	t.Helper()
	lift = replica.FailFork(t)
	_ = replica.Client(t).Do(ctxT(t), "BGSAVE").Err() // the fork fails: the reply is an error
	return lift
}

// TestReplicaGuard: a replica whose save fails under the master's write load
// panics on Redis alone ("Replica was unable to write command to disk"); with
// the guardian, which holds stop-writes-on-bgsave-error no on the replica before
// anything fails, it survives. Promoted, it gets the protection back within a
// tick.
func TestReplicaGuard(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			replicaGuard(t, b)
		})
	}
}

func replicaGuard(t *testing.T, b testredis.Build) {
	// Redis alone: the crash is real here, or the guarded run proves nothing.
	m0, r0 := startPair(t, b)
	w0 := m0.StartWriter(t, time.Millisecond)
	waitWrites(t, w0, 50)
	replicaFailsSave(t, r0)
	waitFor(t, "the unguarded replica to crash", func() bool { return panicked(t, r0) })
	w0.Stop()

	master, replica := startPair(t, b)
	rc := replica.Client(t)
	g := startGuardian(t, replica, guardianOpts{Interval: 200 * time.Millisecond, ConfigRefresh: 200 * time.Millisecond})
	applied := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyReplicaGuard}, nil)
	if applied.str("setting") != policy.SettingStopWrites || applied.str("new_value") != "no" {
		t.Errorf("remedy_applied = %s, want stop-writes-on-bgsave-error no", applied)
	}
	w := master.StartWriter(t, time.Millisecond)
	waitWrites(t, w, 50)
	lift := replicaFailsSave(t, replica)
	replica.WaitFor(t, "the replica's save to fail", waitLong, testredis.SaveStatus("err"))
	waitWrites(t, w, 500) // the master streams these to the replica
	if panicked(t, replica) {
		t.Fatalf("the guarded replica panicked:\n%s", replica.LogTail(80))
	}
	if err := rc.Ping(ctxT(t)).Err(); err != nil {
		t.Fatalf("the guarded replica does not answer PING: %v", err)
	}
	if f := g.entries(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDBgsaveFailed}); len(f) == 0 {
		t.Errorf("the replica's failed save was not reported (bgsave_failed):\n%s", g.dump())
	}
	lift()
	if err := rc.Do(ctxT(t), "BGSAVE").Err(); err != nil && !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("BGSAVE after the fault: %v", err)
	}
	replica.WaitFor(t, "a good save on the replica", waitLong, testredis.SaveStatus("ok"))
	if got := configGet(t, rc, policy.SettingStopWrites); got != "no" {
		t.Errorf("%s = %q on the replica after its save succeeded, want the guard kept (no)", policy.SettingStopWrites, got)
	}
	w.Stop()

	// Promotion: the new master is protected again within a tick or two.
	if err := rc.Do(ctxT(t), "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatalf("REPLICAOF NO ONE: %v", err)
	}
	promoted := time.Now()
	g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "remedy": policy.RemedyReplicaGuard}, nil)
	waitConfig(t, rc, policy.SettingStopWrites, "yes")
	t.Logf("promoted: stop-writes-on-bgsave-error yes again after %s", time.Since(promoted).Round(time.Millisecond))
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("ledger still holds %+v after the promotion", ch)
	}
}
