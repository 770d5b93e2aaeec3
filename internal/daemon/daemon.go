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

	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// Reader is what the loop reads: one Redis and its host (monitor.Collector).
type Reader interface {
	Name() string
	Snapshot(ctx context.Context, now time.Time) monitor.Snapshot
	// Wake receives when a log line calls for a tick at once.
	Wake() <-chan struct{}
	// MarkConfigStale makes the next Snapshot run CONFIG GET again.
	MarkConfigStale()
	// MarkHostStale makes the next Snapshot read the host again, even if its
	// last reading is recent.
	MarkHostStale()
	// SetFollowerStarter says how to run the log follower under the loop's errgroup.
	SetFollowerStarter(start func(*monitor.Follower) (stop func()))
}

// Writer is what carries out decisions (remediate.Executor).
type Writer interface {
	Execute(ctx context.Context, d policy.Decision) policy.Outcome
	// Reconcile learns which Redis answers, and when fresh (this tick's CONFIG GET)
	// yields held changes someone else changed; it returns the settings yielded to
	// an operator.
	Reconcile(r monitor.RedisReading, fresh bool) []policy.Yield
	Held() map[string]policy.Held
	Changes() []remediate.Change
	// Stranded are the ledger's entries of another Redis, by setting, with why.
	Stranded() map[string]string
	// KeptYields are the yields to operators a previous run kept; KeepYields
	// keeps the current ones, so a restart does not take back what an operator
	// took over in an episode.
	KeptYields() []policy.Yield
	KeepYields([]policy.Yield)
}

var (
	_ Reader = (*monitor.Collector)(nil)
	_ Writer = (*remediate.Executor)(nil)
)

// Instance is one watched Redis with everything its loop needs.
type Instance struct {
	Reader     Reader
	Writer     Writer
	Thresholds policy.Thresholds
	Remedies   policy.Remedies
	Ignore     map[string]bool
	// Blocked, when set, is why remedies are off for this instance (its ledger
	// cannot be read): the loop still watches and reports, and changes nothing.
	Blocked error
	// Insecure, when set, is why the state dir or the ledger can be written by
	// other users: a warning finding every tick, the remedies stay on.
	Insecure error
	Interval time.Duration
	// FastPoll, when below Interval, is the tick interval while a fork child runs
	// and around the moment Redis's next automatic save is due (policy.NextPoll):
	// without a log line to wake the loop, a failure there is seen this fast.
	FastPoll time.Duration
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
	// Fork is the host's fork slots as the tick saw them (fork_budget).
	Fork monitor.ForkView
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
	in.Reader.SetFollowerStarter(func(f *monitor.Follower) func() {
		fctx, stop := context.WithCancel(gctx)
		g.Go(func() error { return f.Run(fctx) })
		return stop
	})
	g.Go(func() error { return l.run(gctx) })
	return g.Wait()
}

// Wake-ups run ticks from a token bucket: WakeBurst at once (a save that
// succeeds and the next that fails, a few lines apart, are each acted on without
// delay), then one per MinWakeGap, so a log that floods cannot flood Redis with
// INFO.
const (
	MinWakeGap = 100 * time.Millisecond
	WakeBurst  = 3
)

type loop struct {
	*Instance
	state policy.State
	// prev is the last snapshot whose Redis reading succeeded; lastFull and
	// prevFull the last two whose INFO asked for every section.
	prev               *monitor.Snapshot
	lastFull, prevFull *monitor.Snapshot
	active             map[string]policy.Finding
	down               bool
	started            bool
	logSrc             string
	// wakeTokens is the wake-up budget, as of wakeAt.
	wakeTokens float64
	wakeAt     time.Time
	// lastErr is why the last tick could not read Redis (nil when it could).
	lastErr error
}

func (l *loop) run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var next time.Time // when the next tick is due; zero: now
	woken := false     // a wake-up is waiting for its tick
	for {
		select {
		case <-ctx.Done():
			l.stop()
			return nil
		case <-timer.C:
		case <-l.Reader.Wake():
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			if due := l.wakeDue(time.Now()); due.Before(next) {
				next = due
			}
			woken = true
		}
		if now := time.Now(); !now.Before(next) {
			if woken {
				l.spendWake(now)
				woken = false
				// A log line said something failed: its cause's numbers (free
				// space, temp files) come from a fresh host reading.
				l.Reader.MarkHostStale()
			}
			next = time.Now().Add(l.tick(ctx, false))
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

// refillWake brings the wake-up budget up to now.
func (l *loop) refillWake(now time.Time) {
	if l.wakeAt.IsZero() {
		l.wakeTokens = WakeBurst
	} else {
		l.wakeTokens = min(WakeBurst, l.wakeTokens+float64(now.Sub(l.wakeAt))/float64(MinWakeGap))
	}
	l.wakeAt = now
}

// wakeDue is when a wake-up may run its tick: now while the budget lasts, else
// when a token is back.
func (l *loop) wakeDue(now time.Time) time.Time {
	l.refillWake(now)
	if l.wakeTokens >= 1 {
		return now
	}
	return now.Add(time.Duration((1 - l.wakeTokens) * float64(MinWakeGap)))
}

// spendWake takes a token for a tick a wake-up asked for.
func (l *loop) spendWake(now time.Time) {
	l.refillWake(now)
	l.wakeTokens = max(l.wakeTokens-1, 0)
}

// stop runs a final pass with a fresh context: the parent is already cancelled,
// but undoing a change must still be able to talk to Redis.
func (l *loop) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), l.Timeout)
	defer cancel()
	l.tick(ctx, true)
	stranded := l.Writer.Stranded()
	for _, c := range l.Writer.Changes() {
		msg := fmt.Sprintf("keeping %s %s across the guardian's stop: its reason (%s) persists; the next start reconciles it", c.Setting, c.Value, c.Reason)
		if why, ok := stranded[c.Setting]; ok {
			msg = fmt.Sprintf("keeping the ledger's entry of %s %s across the guardian's stop: %s", c.Setting, c.Value, why)
		} else if l.lastErr != nil {
			msg = fmt.Sprintf("keeping %s %s across the guardian's stop: Redis could not be reached to check or restore it (%v); the next start reconciles it", c.Setting, c.Value, l.lastErr)
		}
		l.Log.Warn(msg,
			events.Field(events.RemedyHeld), zap.String("setting", c.Setting), zap.String("new_value", c.Value), zap.String("old_value", c.Original), zap.String("remedy", c.Remedy))
	}
}

// tick reads, decides and acts once, and returns how long the loop may wait
// before the next tick.
func (l *loop) tick(parent context.Context, stopping bool) time.Duration {
	ctx, cancel := context.WithTimeout(parent, l.Timeout)
	defer cancel()
	start := time.Now()
	now := l.Now()
	s := l.Reader.Snapshot(ctx, now)
	if !stopping && ctx.Err() != nil {
		// The guardian is stopping and cut this tick short: what failed is our own
		// cancelled context, not Redis. The final pass reads again.
		return l.Interval
	}
	prev := l.prev
	l.lastErr = s.Redis.Err
	l.reportReachability(s)
	l.reportLogSource(s.Log)

	var yielded []policy.Yield
	if s.Redis.Err == nil && !stopping && l.Blocked == nil {
		if !l.started {
			// The episodes a previous run yielded to an operator stay theirs.
			yielded = l.Writer.KeptYields()
		}
		// The ledger is the truth, but the live value wins: yield wherever someone
		// else changed a held setting (also at start-up, for a previous run's entries).
		yielded = append(yielded, l.Writer.Reconcile(s.Redis, s.Redis.ConfigTime.Equal(now) || !l.started)...)
		l.started = true
	}

	res, st := policy.Evaluate(policy.Input{
		Snapshot: s, Prev: l.diagPrev(s), Held: l.Writer.Held(), Remedies: l.Remedies, Thresholds: l.Thresholds,
		Ignore: l.Ignore, Yielded: yielded, Stranded: l.Writer.Stranded(), Now: now, Rand: policy.DefaultRand, Stopping: stopping,
	}, l.state)
	if l.Blocked != nil {
		res.Findings = append([]policy.Finding{policy.LedgerUnreadable(l.Blocked, errors.Is(l.Blocked, remediate.ErrStateDir))}, res.Findings...)
		res.Decisions = nil
	}
	if l.Insecure != nil {
		res.Findings = append(res.Findings, policy.StateDirInsecure(l.Insecure))
	}
	l.reportFindings(res.Findings)

	outs := make([]policy.Outcome, 0, len(res.Decisions))
	changed := false
	for _, d := range res.Decisions {
		o := l.Writer.Execute(ctx, d)
		outs = append(outs, o)
		if o.OK && (d.Action == policy.ActSet || d.Action == policy.ActUndo || d.Action == policy.ActForkResume ||
			d.Action == policy.ActForkSlotTake && d.Setting != "") {
			changed = true
		}
	}
	l.state = policy.Observe(st, now, outs)
	if l.started && l.Blocked == nil {
		l.Writer.KeepYields(l.state.Yields())
	}
	if changed {
		l.Reader.MarkConfigStale()
	}
	if s.Redis.Err == nil {
		l.prev = &s
		if s.Redis.InfoFull {
			l.prevFull, l.lastFull = l.lastFull, &s
		}
	}
	if l.Report != nil {
		l.Report(TickReport{
			Instance: l.Reader.Name(), Start: start, Duration: time.Since(start), Up: s.Redis.Err == nil,
			Findings: res.Findings, Held: l.Writer.Changes(), WritesRejected: policy.RejectsWrites(res.Findings),
			Fork: s.Fork,
		})
	}
	next := policy.NextPoll(s, prev, now, l.Interval, l.FastPoll)
	if next.FreshHost {
		l.Reader.MarkHostStale()
	}
	return next.Wait
}

// diagPrev is the snapshot a tick's diagnosis compares with, for counters that
// must rise to mean something (errorstats, output buffer disconnections, the
// cgroup's oom_kill, aof_delayed_fsync). A light tick carries the last full
// read's stats, so it compares with the full read before that one: the rise
// between the two last full reads then holds until the next, instead of showing
// at the full tick only and clearing at the light one after it.
func (l *loop) diagPrev(s monitor.Snapshot) *monitor.Snapshot {
	switch {
	case s.Redis.InfoFull && l.lastFull != nil:
		return l.lastFull
	case s.Redis.Err == nil && !s.Redis.InfoFull && l.prevFull != nil:
		return l.prevFull
	}
	return l.prev
}

// reportLogSource says once where the Redis log is, because it decides how fast a
// failure is seen: a followed file wakes the loop at once, anything else waits for
// a poll (close around a due save and while a child runs, else the next tick).
func (l *loop) reportLogSource(r monitor.LogReading) {
	key := string(r.Source) + " " + r.Path
	if r.Err != nil {
		key += " err"
	}
	if key == l.logSrc {
		return
	}
	l.logSrc = key
	switch {
	case r.Source == monitor.LogFile && r.Err == nil:
		l.Log.Info("following the redis log", events.Field(events.LogSource), zap.String("path", r.Path))
	case r.Source == monitor.LogFile:
		l.Log.Warn("cannot follow the redis log: failures are seen by polling (closely around a due save and while a child runs), without their cause text",
			events.Field(events.LogSource), zap.String("path", r.Path), zap.Error(r.Err))
	case r.Source == monitor.LogStdout || r.Source == monitor.LogSyslog:
		l.Log.Info("redis logs to "+string(r.Source)+": failures are seen by polling (closely around a due save and while a child runs), without their cause text (set log_file if a copy is readable)",
			events.Field(events.LogSource))
	}
}

func (l *loop) reportReachability(s monitor.Snapshot) {
	if s.Redis.Err != nil && !l.down {
		l.down = true
		l.Log.Error("redis is unreachable", events.Field(events.Unreachable), zap.String("cause", s.Redis.Err.Error()), zap.String("kind", string(s.Redis.ErrKind)))
	} else if s.Redis.Err == nil && l.down {
		l.down = false
		l.Log.Info("redis answers again", events.Field(events.Back))
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
		fields := []zap.Field{events.Field(events.FindingRaised), zap.String("finding", f.ID), zap.String("severity", string(f.Severity)),
			zap.String("cause", f.Cause), zap.String("fix", f.Fix)}
		if f.Severity == policy.Critical {
			l.Log.Error(f.ID+": "+f.Summary, fields...)
		} else {
			l.Log.Warn(f.ID+": "+f.Summary, fields...)
		}
	}
	for id, f := range l.active {
		if !seen[id] {
			delete(l.active, id)
			l.Log.Info(id+" cleared: "+f.Summary, events.Field(events.FindingCleared), zap.String("finding", id), zap.String("severity", string(f.Severity)))
		}
	}
}
