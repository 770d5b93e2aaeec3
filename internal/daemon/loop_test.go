package daemon_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// The loop's own behaviour (order within a tick, wake-ups, stop, watchdog beats),
// unit-tested on fakes in milliseconds; the integration tests prove the remedies
// on a real Redis.

// redisState is a Redis with save points and stop-writes-on-bgsave-error yes whose
// last save status the test sets: with "err" writes are rejected until the toggle.
type redisState struct {
	mu       sync.Mutex
	status   string
	lastSave int64 // rdb_last_save_time
	cfg      monitor.RedisConfig
	down     error // set: Redis cannot be reached
}

func (r *redisState) snapshot(now time.Time) monitor.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := monitor.RedisConfig{}
	for k, v := range r.cfg {
		cfg[k] = v
	}
	s := monitor.Snapshot{Instance: "fake", Time: now}
	if r.down != nil {
		s.Redis.Err = r.down
		return s
	}
	s.Redis.Info.RDBLastBgsaveStatus = r.status
	s.Redis.Info.RDBLastSaveTime = r.lastSave
	s.Redis.Info.AOFLastWriteStatus = "ok"
	s.Redis.Config = cfg
	s.Redis.ConfigTime = now
	s.Host = monitor.HostReading{Disabled: true, RDBFileSize: -1, Overcommit: -1, PID: -1, ProcAnonHugePages: -1, ProcSwap: -1, ProcRSS: -1}
	return s
}

func (r *redisState) set(status string) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

// saved is a save that succeeded now.
func (r *redisState) saved() {
	r.mu.Lock()
	r.status, r.lastSave = "ok", time.Now().Unix()
	r.mu.Unlock()
}

func newRedisState(status string) *redisState {
	return &redisState{status: status, cfg: monitor.RedisConfig{"save": "900 1", "stop-writes-on-bgsave-error": "yes"}}
}

type loopHarness struct {
	reader  *fakeReader
	writer  *fakeWriter
	logs    *observer.ObservedLogs
	ticks   atomic.Int64
	beats   atomic.Int64
	reports chan daemon.TickReport
	cancel  context.CancelFunc
	done    chan error
}

func startLoop(t *testing.T, r *redisState, interval, beatEvery time.Duration, yield []policy.Yield) *loopHarness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &loopHarness{reader: newFakeReader(r.snapshot), writer: newFakeWriter(), logs: logs, reports: make(chan daemon.TickReport, 100), done: make(chan error, 1)}
	h.writer.yield = yield
	inst := &daemon.Instance{
		Reader: h.reader, Writer: h.writer, Thresholds: policy.DefaultThresholds(), Remedies: policy.DefaultRemedies(),
		Ignore: map[string]bool{}, Interval: interval, Log: zap.New(core),
		Report: func(rep daemon.TickReport) {
			h.ticks.Add(1)
			select {
			case h.reports <- rep:
			default:
			}
		},
		Beat: func() { h.beats.Add(1) }, BeatEvery: beatEvery,
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- inst.Run(ctx) }()
	t.Cleanup(func() { _ = h.stop() })
	return h
}

func (h *loopHarness) stop() error {
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // a second stop returns the same
		return err
	case <-time.After(5 * time.Second):
		return errors.New("Run did not return within 5s of cancel")
	}
}

func waitLoop(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLoopTickOrder: the first tick reconciles the ledger before anything is
// decided, executes the toggle, then marks CONFIG stale so the next refresh sees it.
func TestLoopTickOrder(t *testing.T) {
	t.Parallel()
	r := newRedisState("err")
	h := startLoop(t, r, time.Hour, 0, nil)
	waitLoop(t, "the first tick", func() bool { return h.ticks.Load() >= 1 })
	want := []string{"reconcile", "execute set " + policy.SettingStopWrites}
	if got := h.writer.Calls(); !slices.Equal(got, want) {
		t.Errorf("writer calls = %q, want %q", got, want)
	}
	h.reader.mu.Lock()
	calls := append([]string(nil), h.reader.calls...)
	h.reader.mu.Unlock()
	if !slices.Equal(calls, []string{"snapshot", "stale"}) {
		t.Errorf("reader calls = %q, want snapshot then stale", calls)
	}
	rep := <-h.reports
	if len(rep.Held) != 1 || !rep.WritesRejected || !rep.Up {
		t.Errorf("report = %+v, want up, writes rejected, one held change", rep)
	}
}

// TestLoopWakesAtOnce: a wake from the log follower runs a tick now, not at the
// next interval (an hour here).
func TestLoopWakesAtOnce(t *testing.T) {
	t.Parallel()
	r := newRedisState("ok")
	h := startLoop(t, r, time.Hour, 0, nil)
	waitLoop(t, "the first tick", func() bool { return h.ticks.Load() >= 1 })
	if n := len(h.writer.Executed()); n != 0 {
		t.Fatalf("a healthy Redis got %d decisions", n)
	}
	r.set("err")
	h.reader.wake <- struct{}{}
	waitLoop(t, "the woken tick", func() bool { return h.ticks.Load() >= 2 })
	if d := h.writer.Executed(); len(d) != 1 || d[0].Action != policy.ActSet {
		t.Errorf("after the wake: %+v, want the toggle", d)
	}
}

// TestLoopStopKeepsProtectingToggle: the final pass at stop keeps a toggle whose
// reason persists (a restart must never open a MISCONF window) and says so.
func TestLoopStopKeepsProtectingToggle(t *testing.T) {
	t.Parallel()
	r := newRedisState("err")
	h := startLoop(t, r, time.Hour, 0, nil)
	waitLoop(t, "the toggle", func() bool { return len(h.writer.Executed()) == 1 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if got := h.writer.Executed(); len(got) != 1 {
		t.Errorf("the final pass executed %+v, want nothing more", got[1:])
	}
	if h.reader.Reads() != 2 {
		t.Errorf("%d snapshots, want 2 (the tick and the final pass)", h.reader.Reads())
	}
	kept := h.logs.FilterField(events.Field(events.RemedyHeld)).All()
	if len(kept) != 1 || !strings.Contains(kept[0].Message, "keeping "+policy.SettingStopWrites) {
		t.Errorf("remedy_held at stop: %+v", kept)
	}
}

// TestLoopStopUndoesWhatNoLongerProtects: a toggle whose save has succeeded is
// undone in the final pass.
func TestLoopStopUndoesWhatNoLongerProtects(t *testing.T) {
	t.Parallel()
	r := newRedisState("err")
	h := startLoop(t, r, time.Hour, 0, nil)
	waitLoop(t, "the toggle", func() bool { return len(h.writer.Executed()) == 1 })
	r.set("ok")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	got := h.writer.Executed()
	if len(got) != 2 || got[1].Action != policy.ActUndo {
		t.Errorf("executed %+v, want the set then its undo", got)
	}
}

// TestLoopYieldFlowsToPolicy: a setting the executor yielded to an operator at
// reconciliation is not taken again in that episode; the loop writes no policy
// state itself, it passes the yield in.
func TestLoopYieldFlowsToPolicy(t *testing.T) {
	t.Parallel()
	r := newRedisState("err")
	h := startLoop(t, r, 5*time.Millisecond, 0, []policy.Yield{{Remedy: policy.RemedyStopWrites, Setting: policy.SettingStopWrites}})
	waitLoop(t, "ten ticks", func() bool { return h.ticks.Load() >= 10 })
	if got := h.writer.Executed(); len(got) != 0 {
		t.Errorf("executed %+v after yielding the setting to an operator, want nothing", got)
	}
	// The episode ends (a save succeeds after the yield: rdb_last_save_time has
	// whole seconds, so in a later second), a new one starts: the guardian acts
	// again.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	r.saved()
	n := h.ticks.Load()
	waitLoop(t, "a tick with the save ok", func() bool { return h.ticks.Load() >= n+2 })
	r.set("err")
	waitLoop(t, "the toggle of the new episode", func() bool { return len(h.writer.Executed()) == 1 })
}

// TestLoopBeatsWhileIdle: the watchdog hears from a live loop at least every
// BeatEvery even when the interval is much longer, and after every tick.
func TestLoopBeatsWhileIdle(t *testing.T) {
	t.Parallel()
	r := newRedisState("ok")
	h := startLoop(t, r, time.Hour, 5*time.Millisecond, nil)
	waitLoop(t, "ten beats", func() bool { return h.beats.Load() >= 10 })
	if n := h.ticks.Load(); n != 1 {
		t.Errorf("%d ticks within an hour-long interval, want 1", n)
	}
}

// TestLoopStopWhileRedisIsDown: a toggle kept at stop because Redis could not be
// reached says so, not that "its reason persists".
func TestLoopStopWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	r := newRedisState("err")
	h := startLoop(t, r, time.Hour, 0, nil)
	waitLoop(t, "the toggle", func() bool { return len(h.writer.Executed()) == 1 })
	r.mu.Lock()
	r.down = errors.New("dial unix /run/redis/redis.sock: connect: connection refused")
	r.mu.Unlock()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	kept := h.logs.FilterField(events.Field(events.RemedyHeld)).All()
	if len(kept) != 1 || !strings.Contains(kept[0].Message, "could not be reached") || strings.Contains(kept[0].Message, "persists") {
		t.Errorf("remedy_held at stop: %+v, want it to say Redis could not be reached", kept)
	}
}

// TestLoopStopCutsATickShort: a tick whose read is cut short by the stop is no
// "redis unreachable: context canceled"; the final pass reads again.
func TestLoopStopCutsATickShort(t *testing.T) {
	t.Parallel()
	r := newRedisState("ok")
	h := startLoop(t, r, 10*time.Millisecond, 0, nil)
	waitLoop(t, "the first tick", func() bool { return h.ticks.Load() >= 1 })
	h.reader.mu.Lock()
	h.reader.hang = true
	reads := h.reader.reads
	h.reader.mu.Unlock()
	waitLoop(t, "the hanging read", func() bool { return h.reader.Reads() > reads })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if got := h.logs.FilterField(events.Field(events.Unreachable)).All(); len(got) != 0 {
		t.Errorf("a tick cancelled by the stop logged %+v", got)
	}
	for _, e := range h.logs.FilterField(events.Field(events.FindingRaised)).All() {
		if e.ContextMap()["finding"] == policy.IDRedisUnreachable {
			t.Errorf("a tick cancelled by the stop raised %v", e.ContextMap())
		}
	}
}

// TestLoopSpacesWakeStorms: a log that wakes the loop a thousand times a second
// gets WakeBurst ticks at once and then at most one per MinWakeGap, not one per
// line.
func TestLoopSpacesWakeStorms(t *testing.T) {
	t.Parallel()
	r := newRedisState("ok")
	h := startLoop(t, r, time.Hour, 0, nil)
	waitLoop(t, "the first tick", func() bool { return h.ticks.Load() >= 1 })
	const storm = 500 * time.Millisecond
	start := time.Now()
	for time.Since(start) < storm {
		select {
		case h.reader.wake <- struct{}{}:
		default:
		}
		time.Sleep(500 * time.Microsecond)
	}
	// Ticks first, then the time: a tick that completes in between counts
	// against the bucket's refill up to the later moment, as it should.
	woken := h.ticks.Load() - 1
	elapsed := time.Since(start)
	if most := int64(elapsed/daemon.MinWakeGap) + daemon.WakeBurst; woken > most || woken < 2 {
		t.Errorf("%d ticks for a %s wake storm, want between 2 and %d (one per %s)", woken, elapsed.Round(time.Millisecond), most, daemon.MinWakeGap)
	}
}
