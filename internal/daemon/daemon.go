// Package daemon is redis-guardian's watch loop: one task per instance that reads a
// Snapshot, diagnoses it, decides and executes remedies, and reports every change of
// state as a structured log event. A matching Redis log line wakes a loop at once.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// Event names for state changes the loop reports (remedy events live in remediate).
const (
	EventFindingRaised  = "finding_raised"
	EventFindingCleared = "finding_cleared"
	EventUnreachable    = "redis_unreachable"
	EventBack           = "redis_back"
)

// Instance is one watched Redis with everything its loop needs.
type Instance struct {
	Collector  *monitor.Collector
	Executor   *remediate.Executor
	Thresholds policy.Thresholds
	Remedies   policy.Remedies
	Ignore     map[string]bool
	Interval   time.Duration
	// Timeout bounds one tick; it defaults to the interval, at least 1 s.
	Timeout time.Duration
	Log     *zap.Logger
	// Report, when set, receives every completed tick's result (status line,
	// metrics, tests). It runs on the loop's goroutine: keep it quick.
	Report func(TickReport)
	// Beat, when set, is called by the loop after every completed tick and at
	// least every BeatEvery while idle: the watchdog's proof that the loop runs.
	Beat      func()
	BeatEvery time.Duration
	Now       func() time.Time
}

// TickReport is what one completed tick saw and did.
type TickReport struct {
	Instance string
	// Start is when the tick began (wall clock); Duration how long it took.
	Start    time.Time
	Duration time.Duration
	Up       bool
	Findings []policy.Finding
	// Held are the changes the guardian holds after the tick.
	Held []remediate.Change
	// WritesRejected says Redis was refusing writes (MISCONF) when read.
	WritesRejected bool
}

// Run is the instance's loop. It returns nil when ctx is cancelled, after a last
// pass that undoes what no longer needs holding.
func (in *Instance) Run(ctx context.Context) error {
	if in.Now == nil {
		in.Now = time.Now
	}
	if in.Timeout == 0 {
		in.Timeout = max(in.Interval, time.Second)
	}
	l := &loop{Instance: in, active: map[string]policy.Finding{}}
	g, gctx := errgroup.WithContext(ctx)
	in.Collector.SetFollowerStarter(func(f *monitor.Follower) func() {
		fctx, stop := context.WithCancel(gctx)
		g.Go(func() error { return f.Run(fctx) })
		return stop
	})
	g.Go(func() error { return l.run(gctx) })
	return g.Wait()
}

type loop struct {
	*Instance
	state   policy.State
	prev    *monitor.Snapshot
	active  map[string]policy.Finding
	down    bool
	started bool
	logSrc  string
}

func (l *loop) run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var next time.Time // when the next tick is due; zero: now
	for {
		select {
		case <-ctx.Done():
			l.stop()
			return nil
		case <-timer.C:
		case <-l.Collector.Wake():
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			next = time.Time{}
		}
		if !time.Now().Before(next) {
			l.tick(ctx, false)
			next = time.Now().Add(l.Interval)
		}
		if l.Beat != nil {
			l.Beat()
		}
		// Wake for the watchdog too when the interval is longer than its period:
		// an idle loop that still answers its timer is a live loop.
		wait := time.Until(next)
		if l.BeatEvery > 0 && wait > l.BeatEvery {
			wait = l.BeatEvery
		}
		timer.Reset(wait)
	}
}

// stop runs a final pass with a fresh context: the parent is already cancelled,
// but undoing a change must still be able to talk to Redis.
func (l *loop) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), l.Timeout)
	defer cancel()
	l.tick(ctx, true)
	held := l.Executor.Ledger.All()
	for _, c := range held {
		l.Log.Warn(fmt.Sprintf("keeping %s %s across the guardian's stop: its reason (%s) persists; the next start reconciles it", c.Setting, c.Value, c.Reason),
			zap.String("event", remediate.EventHeld), zap.String("setting", c.Setting), zap.String("new_value", c.Value), zap.String("old_value", c.Original), zap.String("remedy", c.Remedy))
	}
}

func (l *loop) tick(parent context.Context, stopping bool) {
	ctx, cancel := context.WithTimeout(parent, l.Timeout)
	defer cancel()
	start := time.Now()
	now := l.Now()
	s := l.Collector.Snapshot(ctx, now)
	l.reportReachability(s)
	l.reportLogSource(s.Log)

	if s.Redis.Err == nil && !stopping {
		// The ledger is the truth, but the live value wins: yield wherever someone
		// else changed a held setting (also at start-up, for a previous run's entries).
		if s.Redis.ConfigTime.Equal(now) || !l.started {
			for _, setting := range l.Executor.Reconcile(s.Redis.Config) {
				if l.state.Yielded == nil {
					l.state.Yielded = map[string]time.Time{}
				}
				l.state.Yielded[setting] = now
			}
		}
		l.started = true
	}

	h := policy.History{Prev: l.prev, RewriteDeferredSince: l.state.DeferredSince, MaxDeferral: l.Remedies.RewriteDeferral.MaxDeferral}
	findings := policy.Diagnose(s, h, l.Thresholds, l.Ignore)
	l.reportFindings(findings)

	ds, st := policy.Decide(policy.Input{
		Snapshot: s, Held: l.Executor.Held(), Remedies: l.Remedies,
		Thresholds: l.Thresholds, Now: now, Rand: policy.DefaultRand, Stopping: stopping,
	}, l.state)
	outs := make([]policy.Outcome, 0, len(ds))
	changed := false
	for _, d := range ds {
		o := l.Executor.Execute(ctx, d)
		outs = append(outs, o)
		if o.OK && (d.Action == policy.ActSet || d.Action == policy.ActUndo) {
			changed = true
		}
	}
	l.state = policy.Observe(st, now, outs)
	if changed {
		l.Collector.Redis().MarkConfigStale()
	}
	if s.Redis.Err == nil {
		l.prev = &s
	}
	if l.Report != nil {
		l.Report(TickReport{
			Instance: l.Collector.Name(), Start: start, Duration: time.Since(start), Up: s.Redis.Err == nil,
			Findings: findings, Held: l.Executor.Ledger.All(), WritesRejected: policy.RejectsWrites(findings),
		})
	}
}

// reportLogSource says once where the Redis log is, because it decides how fast a
// failure is seen: a followed file wakes the loop at once, anything else waits for
// the next tick.
func (l *loop) reportLogSource(r monitor.LogReading) {
	key := r.Source + " " + r.Path
	if r.Err != nil {
		key += " err"
	}
	if key == l.logSrc {
		return
	}
	l.logSrc = key
	switch {
	case r.Source == "file" && r.Err == nil:
		l.Log.Info("following the redis log", zap.String("event", "log_source"), zap.String("path", r.Path))
	case r.Source == "file":
		l.Log.Warn("cannot follow the redis log: failures are seen at the next tick, without their cause text",
			zap.String("event", "log_source"), zap.String("path", r.Path), zap.Error(r.Err))
	case r.Source == "stdout" || r.Source == "syslog":
		l.Log.Info("redis logs to "+r.Source+": failures are seen at the next tick, without their cause text (set log_file if a copy is readable)",
			zap.String("event", "log_source"))
	}
}

func (l *loop) reportReachability(s monitor.Snapshot) {
	if s.Redis.Err != nil && !l.down {
		l.down = true
		l.Log.Error("redis is unreachable", zap.String("event", EventUnreachable), zap.String("cause", s.Redis.Err.Error()), zap.String("kind", string(s.Redis.ErrKind)))
	} else if s.Redis.Err == nil && l.down {
		l.down = false
		l.Log.Info("redis answers again", zap.String("event", EventBack))
	}
}

// reportFindings logs a finding when it is raised, when its severity changes, and
// when it clears: state changes, not one line per tick.
func (l *loop) reportFindings(fs []policy.Finding) {
	seen := map[string]bool{}
	for _, f := range fs {
		seen[f.ID] = true
		old, ok := l.active[f.ID]
		if ok && old.Severity == f.Severity {
			l.active[f.ID] = f
			continue
		}
		l.active[f.ID] = f
		fields := []zap.Field{zap.String("event", EventFindingRaised), zap.String("finding", f.ID), zap.String("severity", string(f.Severity)),
			zap.String("cause", f.Cause), zap.String("fix", f.Remedy)}
		if f.Severity == policy.Critical {
			l.Log.Error(f.ID+": "+f.Summary, fields...)
		} else {
			l.Log.Warn(f.ID+": "+f.Summary, fields...)
		}
	}
	for id, f := range l.active {
		if !seen[id] {
			delete(l.active, id)
			l.Log.Info(id+" cleared: "+f.Summary, zap.String("event", EventFindingCleared), zap.String("finding", id), zap.String("severity", string(f.Severity)))
		}
	}
}

// RunAll runs every instance's loop until ctx is cancelled. One instance failing
// never stops the others: loops only return on cancellation.
func RunAll(ctx context.Context, insts []*Instance) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, in := range insts {
		g.Go(func() error {
			if err := in.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("instance %s: %w", in.Collector.Name(), err)
			}
			return nil
		})
	}
	return g.Wait()
}
