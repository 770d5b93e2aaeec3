package supervisor_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/metrics"
	"github.com/redis-guardian/redis-guardian/internal/supervisor"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// TestReloadKeepsOldInstanceWhenNewStartFails: a reload that changes an instance
// from dry-run to enforce while another process holds its ledger's lock cannot
// start the new one. The old one must keep watching, and the log must name the
// instance and why. Before, the old loop was stopped first and the instance was
// left unwatched until the next reload or restart.
func TestReloadKeepsOldInstanceWhenNewStartFails(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{NoSave: true})
	cfg := config.Default()
	cfg.Mode, cfg.StateDir, cfg.Interval = config.ModeDryRun, t.TempDir(), 100*time.Millisecond
	cfg.Instances = cfg.Instances[:1]
	cfg.Instances[0].Name, cfg.Instances[0].Addr = "main", srv.Socket
	enforce := *cfg
	enforce.Mode = config.ModeEnforce

	// Another redis-guardian (or a restore) holds the ledger the enforcing instance needs.
	held, err := remediate.OpenFileLedger(cfg.StateDir, "main")
	if err != nil {
		t.Fatalf("take the ledger's lock: %v", err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	s := supervisor.New(cfg, supervisor.Options{
		// Read only inside a reload, which the test asks for after each change.
		Load:    func() (*config.Config, error) { c := enforce; return &c, nil },
		Version: "test", Log: zap.New(core), Metrics: metrics.New("test"),
	})
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, reload) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = held.Close()
	})
	waitTicks(t, s, time.Time{}, 2)

	failed := reloadAndWait(t, reload, logs, events.Field(events.ReloadFailed))
	if !strings.Contains(failed.ContextMap()["error"].(string), remediate.ErrLocked.Error()) {
		t.Errorf("reload_failed entry %q: its error does not say the ledger is locked: %v", failed.Message, failed.ContextMap())
	}
	var named bool
	for _, e := range logs.FilterField(zap.String("instance", "main")).FilterLevelExact(zapcore.ErrorLevel).All() {
		if err, _ := e.ContextMap()["error"].(string); strings.Contains(err, remediate.ErrLocked.Error()) && strings.Contains(e.Message, "keeps running") {
			named = true
		}
	}
	if !named {
		t.Errorf("no error entry names instance main, the locked ledger and that the old instance keeps running; entries: %v", messages(logs))
	}
	// The old (dry-run) instance still completes ticks.
	waitTicks(t, s, time.Now(), 3)

	// Once the lock is free, the next reload starts the enforcing instance, which
	// takes the lock itself.
	if err := held.Close(); err != nil {
		t.Fatalf("release the ledger's lock: %v", err)
	}
	reloadAndWait(t, reload, logs, events.Field(events.Reloaded))
	wantLocked(t, cfg.StateDir, "after the reload to enforce")
	waitTicks(t, s, time.Now(), 2)

	// A change of an enforcing instance hands its ledger (and lock) to the new
	// loop: there is no moment another process could take it, and closing the old
	// loop does not close the ledger under the new one.
	enforce.Interval = 150 * time.Millisecond
	done2 := reloadAndWait(t, reload, logs, events.Field(events.Reloaded))
	if got := done2.ContextMap()["restarted"]; !reflect.DeepEqual(got, []any{"main"}) {
		t.Errorf("reload restarted %v, want [main]", got)
	}
	wantLocked(t, cfg.StateDir, "after a reload of the enforcing instance")
	waitTicks(t, s, time.Now(), 2)
}

// wantLocked fails unless the ledger of instance main is locked by the supervisor.
func wantLocked(t *testing.T, stateDir, when string) {
	t.Helper()
	l, err := remediate.OpenFileLedger(stateDir, "main")
	if l != nil {
		_ = l.Close()
	}
	if !errors.Is(err, remediate.ErrLocked) {
		t.Errorf("%s the ledger opens with %v, want ErrLocked: the enforcing instance holds it", when, err)
	}
}

// waitTicks waits until instance main has completed n ticks that ended after since,
// as the supervisor's status shows them.
func waitTicks(t *testing.T, s *supervisor.Supervisor, since time.Time, n int) {
	t.Helper()
	seen := map[time.Time]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < n {
		if time.Now().After(deadline) {
			t.Fatalf("instance main completed %d tick(s) after %s within 30s, want %d; status: %+v", len(seen), since.Format(time.StampMilli), n, s.Status().Instances)
		}
		for _, in := range s.Status().Instances {
			if in.Name == "main" && in.LastTick != nil && in.LastTick.After(since) {
				seen[*in.LastTick] = true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reloadAndWait asks for a reload and waits for the first entry with the field f
// that it logs.
func reloadAndWait(t *testing.T, reload chan<- struct{}, logs *observer.ObservedLogs, f zap.Field) observer.LoggedEntry {
	t.Helper()
	before := logs.FilterField(f).Len()
	reload <- struct{}{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if all := logs.FilterField(f).All(); len(all) > before {
			return all[before]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log entry with %s=%v within 30s; entries: %v", f.Key, f.String, messages(logs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func messages(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, e.Message)
	}
	return out
}
