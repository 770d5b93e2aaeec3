package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// incrFiles counts the INCR files in the server's AOF dir (7.0+ multi-part AOF).
func incrFiles(t *testing.T, srv *testredis.Server) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(srv.DataDir, "appendonlydir"))
	if err != nil {
		t.Fatalf("read the AOF dir: %v", err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".incr.aof") {
			n++
		}
	}
	return n
}

// stormServer is a Redis whose AOF has grown far past its base (the default
// auto-aof-rewrite-percentage 100), but not yet past auto-aof-rewrite-min-size.
func stormServer(t *testing.T, b testredis.Build) *testredis.Server {
	t.Helper()
	srv := testredis.Start(t, testredis.Options{AppendOnly: true, Args: []string{"--auto-aof-rewrite-min-size", "64mb"}, Build: b})
	srv.Fill(t, 2000, 64)
	return srv
}

// startStorm makes every fork fail and lowers auto-aof-rewrite-min-size below the
// AOF's size, so the automatic rewrite is due: Redis then tries one at every cron
// tick.
func startStorm(t *testing.T, srv *testredis.Server) (lift func()) {
	t.Helper()
	lift = srv.FailFork(t)
	configSet(t, srv.Client(t), "auto-aof-rewrite-min-size", "1kb")
	return lift
}

// TestRewriteStormStopped: with fork failing, Redis alone starts an automatic
// rewrite at every cron tick and each one adds an INCR file (fork failures are not
// counted by its limiter). With the guardian, the storm stops at once
// (auto-aof-rewrite-percentage 0 through the ledger, aof_rewrite_storm raised with
// the cause); after the fault, the guardian's own BGREWRITEAOF folds the INCR
// files, the percentage is back and the ledger is empty.
func TestRewriteStormStopped(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			rewriteStormStopped(t, b)
		})
	}
}

func rewriteStormStopped(t *testing.T, b testredis.Build) {
	const window = 3 * time.Second

	// Redis alone: the storm is real here, or the test below would prove nothing.
	alone := stormServer(t, b)
	before := incrFiles(t, alone)
	liftAlone := startStorm(t, alone)
	time.Sleep(window)
	stormed := incrFiles(t, alone) - before
	liftAlone()
	if stormed < 5 {
		t.Fatalf("without the guardian a %s fork failure added only %d INCR files: no storm to stop", window, stormed)
	}

	srv := stormServer(t, b)
	c := srv.Client(t)
	g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, Remedies: func(rs policy.Remedies) {
		r := policy.ConfigOf[*policy.RewriteRetryConfig](rs)
		r.InitialBackoff, r.MaxBackoff = 500*time.Millisecond, time.Second
	}})
	g.waitTicks(1)
	before = incrFiles(t, srv)
	lift := startStorm(t, srv)
	applied := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingRewritePercent}, nil)
	if applied.str("remedy") != policy.RemedyRewriteRetry || applied.str("reason") != policy.IDAOFRewriteStorm || applied.str("new_value") != "0" {
		t.Errorf("remedy_applied = %s, want rewrite_retry setting 0 for aof_rewrite_storm", applied)
	}
	storm := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDAOFRewriteStorm}, nil)
	if storm.str("severity") != string(policy.Critical) || !strings.Contains(storm.str("cause"), "Resource temporarily unavailable") {
		t.Errorf("finding = %s, want critical with the fork's cause", storm)
	}
	time.Sleep(window)
	added := incrFiles(t, srv) - before
	t.Logf("%s fork failure: %d INCR files added by Redis alone, %d with the guardian", window, stormed, added)
	if added > 2 {
		t.Errorf("%d INCR files added in %s with the guardian, want at most 2 (Redis alone: %d)", added, window, stormed)
	}

	lift()
	g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyRewriteRetry, "result": "Background append only file rewriting started"}, nil)
	srv.WaitFor(t, "the guardian's rewrite to succeed", waitLong, func(info map[string]string) bool {
		return info["aof_last_bgrewrite_status"] == "ok" && info["aof_rewrite_in_progress"] == "0"
	})
	g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "setting": policy.SettingRewritePercent}, nil)
	if got := configGet(t, c, policy.SettingRewritePercent); got != "100" {
		t.Errorf("%s = %q after the undo, want 100", policy.SettingRewritePercent, got)
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("ledger still holds %+v", ch)
	}
	if n := incrFiles(t, srv); n > 2 {
		t.Errorf("%d INCR files after the successful rewrite, want them folded", n)
	}
	// The load deferral's quiet-time rewrite must not add failing forks of its own.
	if f := g.entries(fieldsEq{"event": string(events.RemedyFailed), "remedy": policy.RemedyRewriteDeferral}); len(f) != 0 {
		t.Errorf("rewrite_deferral ran failing rewrites during the fault: %v", f)
	}
}
