package instance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

type gotEvent struct {
	name          events.Name
	remedy, limit string
}

// testConfig is one enforcing instance on a state dir writable by others (so
// Insecure is set) with close polling on: every field a blocked copy could drop.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Mode = config.ModeEnforce
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// MkdirAll in the ledger keeps an existing dir's mode; the umask would not.
	if err := os.Chmod(cfg.StateDir, 0o777); err != nil {
		t.Fatal(err)
	}
	cfg.Interval, cfg.FastPoll = 2*time.Second, 150*time.Millisecond
	cfg.Instances = cfg.Instances[:1]
	cfg.Instances[0].Name = "main"
	cfg.Instances[0].Addr = "unix://" + filepath.Join(t.TempDir(), "redis.sock")
	return cfg
}

// TestBlockedIsBuiltLikeAnyOther: a blocked instance (its ledger cannot be used)
// differs from an open one only in its ledger, its dry run and the Blocked error
// on the loop. Before the one builder, OpenBlocked dropped FastPoll, Insecure and
// OnEvent: a blocked instance polled slowly during a fork, kept quiet about a
// forgeable state dir, and its remedy events never reached the metrics.
func TestBlockedIsBuiltLikeAnyOther(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	var got []gotEvent
	opts := Options{
		Timeout:   time.Second,
		OnEvent:   func(n events.Name, remedy, limit string) { got = append(got, gotEvent{n, remedy, limit}) },
		Report:    func(daemon.TickReport) {},
		Beat:      func() {},
		BeatEvery: time.Minute,
	}
	p, err := Prepare(cfg, cfg.Instances[0], opts)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	t.Cleanup(p.Close)
	open, err := p.Open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = open.Ledger.Close() })
	why := errors.New("the ledger cannot be read")
	blocked := p.OpenBlocked(why)

	if _, ok := blocked.Ledger.(*remediate.MemLedger); !ok {
		t.Errorf("blocked ledger is %T, want a *remediate.MemLedger", blocked.Ledger)
	}
	if !blocked.Executor.DryRun || open.Executor.DryRun {
		t.Errorf("DryRun: blocked %v, open %v; want true, false", blocked.Executor.DryRun, open.Executor.DryRun)
	}
	if blocked.Loop.Blocked != why || open.Loop.Blocked != nil {
		t.Errorf("Blocked: blocked %v, open %v; want %v, nil", blocked.Loop.Blocked, open.Loop.Blocked, why)
	}
	if open.Loop.FastPoll != cfg.FastPoll || open.Loop.Insecure == nil {
		t.Fatalf("open instance: FastPoll %v, Insecure %v; want %v and a state dir writable by others", open.Loop.FastPoll, open.Loop.Insecure, cfg.FastPoll)
	}
	sameFields(t, "loop", open.Loop, blocked.Loop, "Writer", "Blocked")
	sameFields(t, "executor", open.Executor, blocked.Executor, "Ledger", "DryRun")

	// The blocked instance's executor reports its events like any other's.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := policy.Decision{Action: policy.ActSuppressed, Remedy: "stop_writes", Limit: "max_per_hour", Reason: "bgsave_failed"}
	if o := blocked.Executor.Execute(ctx, d); !o.OK {
		t.Fatalf("execute %v: %+v", d, o)
	}
	want := []gotEvent{{events.RemedySuppressed, "stop_writes", "max_per_hour"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OnEvent of a blocked instance got %v, want %v", got, want)
	}
}

// sameFields fails for every exported field of *a and *b (structs of one type) that
// differs, except those named: functions are the same when they are the same
// function, loggers when both are set, everything else by reflect.DeepEqual.
func sameFields(t *testing.T, what string, a, b any, except ...string) {
	t.Helper()
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	skip := map[string]bool{}
	for _, e := range except {
		skip[e] = true
	}
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if !f.IsExported() || skip[f.Name] {
			continue
		}
		fa, fb := va.Field(i), vb.Field(i)
		var same bool
		switch {
		case f.Type.Kind() == reflect.Func:
			same = fa.IsNil() == fb.IsNil() && (fa.IsNil() || fa.Pointer() == fb.Pointer())
		case f.Name == "Log":
			same = !fa.IsNil() && !fb.IsNil()
		default:
			same = reflect.DeepEqual(fa.Interface(), fb.Interface())
		}
		if !same {
			t.Errorf("%s.%s differs: open %v, blocked %v", what, f.Name, fa.Interface(), fb.Interface())
		}
	}
}
