package policy

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Remedy names, as they appear in configuration, logs and metrics.
const (
	RemedyStopWrites      = "stop_writes"
	RemedyBgsaveRetry     = "bgsave_retry"
	RemedyRewriteDeferral = "rewrite_deferral"
	RemedyTempCleanup     = "temp_cleanup"
)

// Settings the remedies change.
const (
	SettingStopWrites     = "stop-writes-on-bgsave-error"
	SettingRewritePercent = "auto-aof-rewrite-percentage"
)

// Action is what a decision asks pkg/remediate to do.
type Action string

// Actions.
const (
	ActSet          Action = "set"          // CONFIG SET through the ledger
	ActUndo         Action = "undo"         // restore a ledger entry's original
	ActBgsave       Action = "bgsave"       // BGSAVE (SCHEDULE when Schedule is set)
	ActBgrewriteaof Action = "bgrewriteaof" // BGREWRITEAOF
	ActDeleteTemp   Action = "delete_temp"  // remove one stale Redis temp file
	ActWarn         Action = "warn"         // report only (e.g. a toggle still held)
)

// Decision is one thing to do.
type Decision struct {
	Remedy  string
	Action  Action
	Setting string
	Value   string
	// Reason is the finding id that motivates the decision; Detail is readable text.
	Reason string
	Detail string
	// Schedule asks for BGSAVE SCHEDULE, because another child runs.
	Schedule bool
	Path     string
}

// Held is a change the ledger says the guardian has made and not undone.
type Held struct {
	Setting  string
	Original string
	Value    string
	Remedy   string
	Since    time.Time
}

// Outcome reports how a decision went, so Decide can rate-limit and back off.
type Outcome struct {
	Decision Decision
	OK       bool
	// Err is the failure text (ACL denied, renamed command, ...), empty on success.
	Err string
}

// State is what Decide remembers between ticks. It is plain data; the daemon keeps
// one per instance and passes it in and out.
type State struct {
	// Actions holds recent action times per remedy, for cooldowns and hourly caps.
	Actions map[string][]time.Time
	// FailedUntil backs a remedy off after a failure; FailCount grows the backoff.
	FailedUntil map[string]time.Time
	FailCount   map[string]int

	// bgsave_retry
	SaveFailedAt time.Time
	RetryAttempt int
	NextRetry    time.Time
	// Cause readings of the previous tick, to notice a cause clearing.
	PrevKnown    bool
	PrevWritable monitor.Tri
	PrevFree     uint64

	// stop_writes
	LastHeldWarn time.Time
	// Yielded holds settings an operator changed while the guardian held them. The
	// guardian does not take such a setting again until its reason has cleared: the
	// operator's choice wins for the whole episode.
	Yielded map[string]time.Time

	// rewrite_deferral
	Samples       []Sample
	DeferredSince time.Time
	LowSince      time.Time
}

// Sample is one reading of total_commands_processed.
type Sample struct {
	T    time.Time
	Cmds int64
}

// Input is everything Decide needs.
type Input struct {
	Snapshot   monitor.Snapshot
	Held       map[string]Held
	Remedies   Remedies
	Thresholds Thresholds
	Now        time.Time
	// Rand returns a number in [0,1) for jitter; nil means no jitter.
	Rand func() float64
	// Stopping: the guardian is shutting down; only undo what no longer protects
	// writes, start nothing new.
	Stopping bool
}

// Decide chooses remedies. It is pure: the same input and state give the same output.
func Decide(in Input, st State) ([]Decision, State) {
	st = st.clone()
	var ds []Decision
	s := in.Snapshot
	if s.Redis.Err != nil || !s.Redis.Config.Known() {
		// Nothing can be judged safely without INFO and CONFIG.
		return nil, st
	}
	ds = append(ds, decideStopWrites(in, &st)...)
	if !in.Stopping {
		ds = append(ds, decideBgsave(in, &st)...)
		ds = append(ds, decideTempCleanup(in, &st)...)
	}
	ds = append(ds, decideRewrite(in, &st)...)
	st.PrevKnown = s.Host.Available && s.Host.DataDir.Known
	st.PrevWritable = s.Host.DataDir.Writable
	st.PrevFree = s.Host.DataDir.Free
	return ds, st
}

// Observe records the outcomes of executed decisions: successes count against the
// rate limits, failures back the remedy off so a denied command is not retried in a
// tight loop.
func Observe(st State, now time.Time, outs []Outcome) State {
	st = st.clone()
	for _, o := range outs {
		r := o.Decision.Remedy
		if o.Decision.Action == ActWarn {
			continue
		}
		if o.OK {
			st.Actions[r] = append(st.Actions[r], now)
			delete(st.FailCount, r)
			delete(st.FailedUntil, r)
			if o.Decision.Action == ActBgsave {
				st.RetryAttempt++
			}
			continue
		}
		st.FailCount[r]++
		back := time.Duration(1<<min(st.FailCount[r]-1, 6)) * 10 * time.Second // 10 s .. ~10 min
		st.FailedUntil[r] = now.Add(back)
	}
	return st
}

// Backoff returns the retry delay for attempt n (0-based): initial doubling to max,
// with up to 20% jitter either way so many guardians do not fork in step.
func Backoff(n int, initial, maxDelay time.Duration, r func() float64) time.Duration {
	d := initial
	for i := 0; i < n && d < maxDelay; i++ {
		d *= 2
	}
	if d > maxDelay {
		d = maxDelay
	}
	if r != nil {
		d = time.Duration(float64(d) * (0.8 + 0.4*r()))
	}
	return d
}

// DefaultRand is the jitter source the daemon uses.
func DefaultRand() float64 { return rand.Float64() }

func (st State) clone() State {
	c := st
	c.Actions = map[string][]time.Time{}
	for k, v := range st.Actions {
		c.Actions[k] = append([]time.Time(nil), v...)
	}
	c.FailedUntil = map[string]time.Time{}
	for k, v := range st.FailedUntil {
		c.FailedUntil[k] = v
	}
	c.FailCount = map[string]int{}
	for k, v := range st.FailCount {
		c.FailCount[k] = v
	}
	c.Samples = append([]Sample(nil), st.Samples...)
	c.Yielded = map[string]time.Time{}
	for k, v := range st.Yielded {
		c.Yielded[k] = v
	}
	return c
}

// allowed applies a remedy's enabled flag, failure backoff, cooldown and hourly cap.
func (st *State) allowed(remedy string, l Limits, now time.Time) bool {
	if !l.Enabled {
		return false
	}
	if until, ok := st.FailedUntil[remedy]; ok && now.Before(until) {
		return false
	}
	recent := st.Actions[remedy][:0]
	for _, t := range st.Actions[remedy] {
		if now.Sub(t) < time.Hour {
			recent = append(recent, t)
		}
	}
	st.Actions[remedy] = recent
	if len(recent) >= l.MaxPerHour {
		return false
	}
	if n := len(recent); n > 0 && now.Sub(recent[n-1]) < l.Cooldown {
		return false
	}
	return true
}

// snapshotWontFit is the predictive condition, recomputed from the snapshot so it
// holds whether or not the finding is ignored for alerting.
func snapshotWontFit(s monitor.Snapshot) bool {
	return s.Host.Available && wontFit(s.Host.DataDir, ExpectedSnapshot(s))
}

// wontFit is the one test of "a snapshot of exp bytes does not fit in dir".
func wontFit(dir monitor.DirReading, exp int64) bool {
	return dir.Known && exp > 0 && int64(dir.Free) < exp
}

func decideStopWrites(in Input, st *State) []Decision {
	s := in.Snapshot
	cfg, info := s.Redis.Config, s.Redis.Info
	r := in.Remedies.StopWrites
	held, isHeld := in.Held[SettingStopWrites]
	failed := info.RDBLastBgsaveStatus == "err"
	wontFit := r.Predictive && snapshotWontFit(s)
	aofOK := info.AOFEnabled && info.AOFLastWriteStatus == "ok"

	if !failed && !wontFit {
		delete(st.Yielded, SettingStopWrites) // the episode is over
	}
	if isHeld {
		if !failed && !wontFit {
			st.LastHeldWarn = time.Time{}
			return []Decision{{Remedy: RemedyStopWrites, Action: ActUndo, Setting: SettingStopWrites, Value: held.Original,
				Reason: IDMisconfRDB, Detail: "a save succeeded and the next one fits: writes are protected by snapshots again"}}
		}
		if in.Stopping {
			return nil // keep it: a restart of the guardian must never open a MISCONF window
		}
		if r.WarnEvery > 0 && (st.LastHeldWarn.IsZero() || in.Now.Sub(st.LastHeldWarn) >= r.WarnEvery) {
			first := st.LastHeldWarn.IsZero()
			st.LastHeldWarn = in.Now
			if !first {
				return []Decision{{Remedy: RemedyStopWrites, Action: ActWarn, Setting: SettingStopWrites, Reason: IDBgsaveFailed,
					Detail: fmt.Sprintf("stop-writes-on-bgsave-error held at %s for %s; %d changes are not on disk yet",
						held.Value, round(in.Now.Sub(held.Since)), info.RDBChangesSinceLastSave)}}
			}
		}
		return nil
	}
	if in.Stopping || !cfg.SavePointsSet() || !cfg.StopWritesOnBgsaveError() {
		return nil
	}
	if _, yielded := st.Yielded[SettingStopWrites]; yielded {
		return nil
	}
	if r.RequireAOF && !aofOK {
		return nil
	}
	var reason, detail string
	switch {
	case failed:
		reason, detail = IDMisconfRDB, "the last RDB save failed: lift MISCONF so writes are accepted while the cause is fixed"
	case wontFit:
		reason, detail = IDSnapshotWontFit, "the next snapshot cannot fit on disk: lift MISCONF before the save fails"
	default:
		return nil
	}
	if !st.allowed(RemedyStopWrites, r.Limits, in.Now) {
		return nil
	}
	return []Decision{{Remedy: RemedyStopWrites, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: reason, Detail: detail}}
}

func decideBgsave(in Input, st *State) []Decision {
	s := in.Snapshot
	info := s.Redis.Info
	r := in.Remedies.BgsaveRetry
	if info.RDBLastBgsaveStatus != "err" {
		// Any successful save, Redis's own autosave included, ends the retries.
		st.SaveFailedAt, st.RetryAttempt, st.NextRetry = time.Time{}, 0, time.Time{}
		return nil
	}
	if st.SaveFailedAt.IsZero() {
		st.SaveFailedAt = in.Now
		st.RetryAttempt = 0
		st.NextRetry = in.Now.Add(Backoff(0, r.InitialBackoff, r.MaxBackoff, in.Rand))
	}
	if info.RDBBgsaveInProgress || info.Loading {
		return nil // a save is already running, or Redis cannot save yet
	}
	h := s.Host
	cleared := ""
	if st.PrevKnown && h.Available && h.DataDir.Known {
		if st.PrevWritable == monitor.No && h.DataDir.Writable == monitor.Yes {
			cleared = "the data dir is writable again"
		}
		exp := ExpectedSnapshot(s)
		if st.PrevFree < uint64(max(exp, 0)) && h.DataDir.Free >= uint64(max(exp, 0)) && st.PrevFree != h.DataDir.Free {
			cleared = fmt.Sprintf("the data dir has room again (%s free)", HumanBytes(int64(h.DataDir.Free)))
		}
	}
	if cleared == "" && in.Now.Before(st.NextRetry) {
		return nil
	}
	if snapshotWontFit(s) && cleared == "" {
		// Forking a save that cannot fit only burns a fork; wait for space.
		st.NextRetry = in.Now.Add(Backoff(st.RetryAttempt, r.InitialBackoff, r.MaxBackoff, in.Rand))
		return nil
	}
	if !st.allowed(RemedyBgsaveRetry, r.Limits, in.Now) {
		return nil
	}
	st.NextRetry = in.Now.Add(Backoff(st.RetryAttempt+1, r.InitialBackoff, r.MaxBackoff, in.Rand))
	detail := fmt.Sprintf("retry %d after the save failed %s ago", st.RetryAttempt+1, round(in.Now.Sub(st.SaveFailedAt)))
	if cleared != "" {
		detail = cleared + ": retrying at once"
	}
	return []Decision{{Remedy: RemedyBgsaveRetry, Action: ActBgsave, Reason: IDBgsaveFailed, Detail: detail,
		Schedule: info.AOFRewriteInProgress || info.ModuleForkInProgress}}
}

func decideTempCleanup(in Input, st *State) []Decision {
	s := in.Snapshot
	r := in.Remedies.TempCleanup
	if !r.Enabled || !s.Host.Available {
		return nil
	}
	minAge := r.MinAge
	if d := s.Host.DataDir; d.Known && (d.Free == 0 || snapshotWontFit(s)) {
		minAge = 0 // the disk is full: every byte of a dead child's file is needed now
	}
	if !st.allowed(RemedyTempCleanup, r.Limits, in.Now) {
		return nil
	}
	// The hourly cap counts files; a cooldown allows one file per tick. Observe
	// records each deletion that succeeded.
	budget := r.MaxPerHour - len(st.Actions[RemedyTempCleanup])
	if r.Cooldown > 0 {
		budget = min(budget, 1)
	}
	var ds []Decision
	for _, f := range s.Host.TempFiles {
		if len(ds) >= budget {
			break
		}
		if !StaleTemp(f, s.Redis.Info, in.Now, minAge) {
			continue
		}
		ds = append(ds, Decision{Remedy: RemedyTempCleanup, Action: ActDeleteTemp, Path: f.Path,
			Reason: IDStaleTempFiles, Detail: fmt.Sprintf("%s temp file of dead pid %d, %s old", f.Kind, f.PID, round(in.Now.Sub(f.ModTime)))})
	}
	return ds
}

// OpsRate is the command rate over the samples window, from deltas of
// total_commands_processed (instantaneous_ops_per_sec is too noisy to act on).
func OpsRate(samples []Sample) (float64, bool) {
	if len(samples) < 2 {
		return 0, false
	}
	a, b := samples[0], samples[len(samples)-1]
	dt := b.T.Sub(a.T).Seconds()
	if dt <= 0 || b.Cmds < a.Cmds {
		return 0, false
	}
	return float64(b.Cmds-a.Cmds) / dt, true
}

func decideRewrite(in Input, st *State) []Decision {
	s := in.Snapshot
	info, cfg := s.Redis.Info, s.Redis.Config
	r := in.Remedies.RewriteDeferral
	held, isHeld := in.Held[SettingRewritePercent]

	// Keep a window of samples; a restart (counter going down) starts a new window.
	if n := len(st.Samples); n > 0 && info.TotalCommandsProcessed < st.Samples[n-1].Cmds {
		st.Samples = nil
	}
	st.Samples = append(st.Samples, Sample{T: in.Now, Cmds: info.TotalCommandsProcessed})
	cut := 0
	for cut < len(st.Samples)-1 && in.Now.Sub(st.Samples[cut+1].T) >= r.Window {
		cut++
	}
	st.Samples = st.Samples[cut:]
	rate, ok := OpsRate(st.Samples)
	full := ok && in.Now.Sub(st.Samples[0].T) >= r.Window/2

	if in.Stopping {
		if isHeld {
			// Nobody watches the load once the guardian is gone: give Redis its own
			// rewrite schedule back.
			return []Decision{{Remedy: RemedyRewriteDeferral, Action: ActUndo, Setting: SettingRewritePercent, Value: held.Original,
				Reason: IDAOFGrowthHigh, Detail: "the guardian is stopping"}}
		}
		return nil
	}
	if !info.AOFEnabled {
		if isHeld {
			return []Decision{{Remedy: RemedyRewriteDeferral, Action: ActUndo, Setting: SettingRewritePercent, Value: held.Original,
				Reason: IDAOFGrowthHigh, Detail: "AOF is off"}}
		}
		return nil
	}
	if isHeld {
		if st.DeferredSince.IsZero() {
			st.DeferredSince = held.Since
		}
		if full && rate < r.LowOps {
			if st.LowSince.IsZero() {
				st.LowSince = in.Now
			}
		} else {
			st.LowSince = time.Time{}
		}
		if !st.LowSince.IsZero() && in.Now.Sub(st.LowSince) >= r.Dwell {
			ds := []Decision{{Remedy: RemedyRewriteDeferral, Action: ActUndo, Setting: SettingRewritePercent, Value: held.Original,
				Reason: IDAOFGrowthHigh, Detail: fmt.Sprintf("load fell to %.0f ops/s for %s", rate, round(in.Now.Sub(st.LowSince)))}}
			st.DeferredSince, st.LowSince = time.Time{}, time.Time{}
			return append(ds, quietRewrite(in, st, rate)...)
		}
		return nil
	}
	st.DeferredSince, st.LowSince = time.Time{}, time.Time{}
	if full && rate > r.HighOps && cfg.Int(SettingRewritePercent, 100) != 0 && st.allowed(RemedyRewriteDeferral, r.Limits, in.Now) {
		st.DeferredSince = in.Now
		return []Decision{{Remedy: RemedyRewriteDeferral, Action: ActSet, Setting: SettingRewritePercent, Value: "0",
			Reason: IDAOFGrowthHigh, Detail: fmt.Sprintf("load %.0f ops/s is above %.0f: defer AOF rewrites (each one forks)", rate, r.HighOps)}}
	}
	if full && rate < r.LowOps {
		return quietRewrite(in, st, rate)
	}
	return nil
}

// quietRewrite runs BGREWRITEAOF at a quiet time when the AOF has grown past the
// ratio, but only if the disk has room for the new base file.
func quietRewrite(in Input, st *State, rate float64) []Decision {
	s := in.Snapshot
	info := s.Redis.Info
	if info.AOFBaseSize <= 0 && info.AOFCurrentSize <= 0 {
		return nil
	}
	base := info.AOFBaseSize
	grown := float64(info.AOFCurrentSize) > in.Thresholds.AOFGrowthRatio*float64(max(base, 1)) &&
		info.AOFCurrentSize >= s.Redis.Config.Int("auto-aof-rewrite-min-size", 64<<20)
	if !grown || info.ForkChildRunning() || info.AOFRewriteScheduled || info.Loading {
		return nil
	}
	if snapshotWontFit(s) {
		return nil
	}
	if !st.allowed(RemedyRewriteDeferral, in.Remedies.RewriteDeferral.Limits, in.Now) {
		return nil
	}
	return []Decision{{Remedy: RemedyRewriteDeferral, Action: ActBgrewriteaof, Reason: IDAOFGrowthHigh,
		Detail: fmt.Sprintf("the AOF is %s against a %s base and load is %.0f ops/s", HumanBytes(info.AOFCurrentSize), HumanBytes(base), rate)}}
}
