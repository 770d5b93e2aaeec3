package daemon_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestReplicaResyncLoop: a master whose replica output buffer limit is too small
// for a full sync under write load drops the replica before each sync finishes,
// and the replica asks for another, forever. The guardian raises
// replica_resync_loop, and with replica_buffer enabled raises the limit until a
// sync finishes, then gives the original back once the replica has been stable.
func TestReplicaResyncLoop(t *testing.T) {
	t.Parallel()
	master := testredis.Start(t, testredis.Options{TCP: true, Args: []string{
		"--client-output-buffer-limit", "replica 1mb 512kb 1",
		"--repl-diskless-sync-delay", "0",
	}})
	mc := master.Client(t)
	orig := configGet(t, mc, policy.SettingOutputBufferLimit)
	master.Fill(t, 10000, 64)
	// Each full sync takes about 3 s (300 µs a key), during which the writes below
	// queue about 3 MB for the replica: more than its 1 MB limit.
	configSet(t, mc, "rdb-key-save-delay", "300")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := master.Client(t)
		value := strings.Repeat("v", 1024)
		for i := 0; ctx.Err() == nil; i++ {
			_ = c.Set(ctx, "load:"+string(rune('a'+i%26)), value, 0).Err()
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	g := startGuardian(t, master, guardianOpts{Interval: 200 * time.Millisecond, ConfigRefresh: time.Second, Remedies: func(rs policy.Remedies) {
		r := policy.ConfigOf[*policy.ReplicaBufferConfig](rs)
		r.Enabled, r.MinFullSyncs, r.Window, r.Dwell = true, 2, time.Minute, 2*time.Second
	}})
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	replica := testredis.Start(t, testredis.Options{Args: []string{"--replicaof", host, port}})

	loop := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDReplicaResyncLoop}, nil)
	if !strings.Contains(loop.str("cause"), "sync_full rose by") {
		t.Errorf("finding = %s, want the numbers", loop)
	}
	raised := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyReplicaBuffer}, nil)
	t.Logf("raised: %s -> %s", raised.str("old_value"), raised.str("new_value"))
	replica.WaitFor(t, "the replica to finish a full sync", 40*time.Second, func(info map[string]string) bool {
		return info["master_link_status"] == "up"
	})
	cancel()
	wg.Wait()
	configSet(t, mc, "rdb-key-save-delay", "0")
	g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "remedy": policy.RemedyReplicaBuffer}, nil)
	if got := configGet(t, mc, policy.SettingOutputBufferLimit); got != orig {
		t.Errorf("%s = %q after the undo, want the original %q", policy.SettingOutputBufferLimit, got, orig)
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("the ledger still holds %+v", ch)
	}
}
