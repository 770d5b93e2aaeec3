package policy

import (
	"fmt"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// RemedyRewriteRetry stops an AOF rewrite storm and a rewrite that cannot fit,
// and retries the rewrite once its cause clears.
//
// A rewrite whose fork fails is not counted in aof_rewrites_consecutive_failures
// (only a failed child is), so Redis's own limiter never engages: serverCron
// starts an automatic rewrite at every tick, and each attempt first opens a new
// INCR file that the next start must load (98 in 8 s measured on 7.0.15). Holding
// auto-aof-rewrite-percentage 0 through the ledger stops the automatic attempts;
// the guardian then runs BGREWRITEAOF itself when the cause clears (a fork
// succeeded elsewhere, the disk has room again) or, failing any sign, by a long
// backoff: each attempt costs an INCR file. A successful rewrite folds the INCR
// files back into one, and the percentage is given back.
//
// A failed child (killed, e.g. by the OOM killer, or a write error) is counted,
// and after three of them Redis's limiter (7.0+) waits 1, 2, 4 ... up to 60
// minutes before its next automatic attempt, meanwhile the INCR files pile up.
// That limiter is left in charge (no hold, no blind retry of ours); the guardian
// only rewrites at once when a reading says the cause cleared (a save child
// succeeded, the disk has room again), which a manual BGREWRITEAOF may do
// because it bypasses the limiter.
const RemedyRewriteRetry = "rewrite_retry"

var rewriteRetry = Def[RewriteRetryConfig, rewriteRetryState]{
	Name:     RemedyRewriteRetry,
	Settings: []Setting{rewritePercentSetting},
	Defaults: func() *RewriteRetryConfig {
		return &RewriteRetryConfig{
			Limits:         Limits{Enabled: true, MaxPerHour: 12},
			Predictive:     true,
			InitialBackoff: 90 * time.Second, // the first blind retry comes after 72 s at the earliest: at most 2 INCR files over a 60 s fault
			MaxBackoff:     15 * time.Minute,
		}
	},
	Decide:  decideRewriteRetry,
	Observe: observeRewriteRetry,
}

// redisRewriteLimit is the number of consecutive failed rewrite children after
// which Redis 7.0+ delays its next automatic rewrite ("has repeatedly failed
// and triggered the limit").
const redisRewriteLimit = 3

// maxClearedGap bounds the time between two retries a cleared cause starts: a
// sign that flickers (a save child succeeding every second while rewrite
// children are still killed) must not become a storm of the guardian's own.
const maxClearedGap = 30 * time.Second

// RewriteRetryConfig configures the rewrite storm stop and retry.
type RewriteRetryConfig struct {
	Limits
	// Predictive also holds the percentage while the disk cannot hold a new base
	// file, so Redis never starts a rewrite that fails half way through the last
	// free space.
	Predictive bool
	// InitialBackoff and MaxBackoff space the retries when no reading says the
	// cause cleared; each failing attempt adds an INCR file, so they are long.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

type rewriteRetryState struct {
	FailedAt  time.Time
	Attempt   int
	NextRetry time.Time
	// LastTry is when the guardian's last BGREWRITEAOF of this episode went out.
	LastTry time.Time
	// PrevForks is total_forks at the previous tick: a rise means a fork succeeded.
	PrevForks int64
	// PrevSave is rdb_last_save_time at the previous tick: a rise means a save
	// (and so, for BGSAVE, a child) succeeded.
	PrevSave  int64
	PrevFree  uint64
	PrevKnown bool
}

// Configure reads remedies.rewrite_retry.
func (c *RewriteRetryConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Bool("predictive", &c.Predictive)
	p.Duration("initial_backoff", &c.InitialBackoff, 100*time.Millisecond)
	p.Duration("max_backoff", &c.MaxBackoff, 100*time.Millisecond)
	if c.MaxBackoff < c.InitialBackoff {
		p.Problem("max_backoff", "%s is below initial_backoff %s", c.MaxBackoff, c.InitialBackoff)
	}
}

// observeRewriteRetry counts the rewrites that went out, which the backoff grows with.
func observeRewriteRetry(st rewriteRetryState, o Outcome) rewriteRetryState {
	if o.Decision.Action == ActBgrewriteaof {
		st.Attempt++
	}
	return st
}

// RewriteStorm reports whether Redis's automatic AOF rewrites are failing at fork
// without its limiter counting them: the last rewrite failed and
// aof_rewrites_consecutive_failures is 0, so nothing stops the next attempt.
func RewriteStorm(info monitor.Info) bool {
	return info.AOFEnabled && info.AOFLastBgrewriteStatus == "err" && info.AOFRewritesConsecutiveFailures == 0 &&
		!info.AOFRewriteInProgress
}

// ExpectedRewrite is the size of the base file a rewrite writes: the current base
// (7.0+), else the dataset in memory.
func ExpectedRewrite(s monitor.Snapshot) int64 {
	if b := s.Redis.Info.AOFBaseSize; b > 0 {
		return b
	}
	return s.Redis.Info.UsedMemory
}

// aofDirOf is where a rewrite writes: the AOF dir (7.0+) when known, else dir.
func aofDirOf(s monitor.Snapshot) monitor.DirReading {
	if s.Host.AOFDir.Known {
		return s.Host.AOFDir
	}
	return s.Host.DataDir
}

// RewriteWontFit reports whether the AOF dir's free space is below the new base
// file a rewrite would write (the old files stay until it succeeds).
func RewriteWontFit(s monitor.Snapshot) bool {
	return s.Redis.Info.AOFEnabled && s.Host.Available && wontFit(aofDirOf(s), ExpectedRewrite(s))
}

func decideRewriteRetry(in Input, r *RewriteRetryConfig, st rewriteRetryState, sh *Shared) ([]Decision, []Finding, rewriteRetryState) {
	ds := st.decide(in, r, sh)
	info := in.Snapshot.Redis.Info
	st.PrevForks, st.PrevSave = info.TotalForks, info.RDBLastSaveTime
	d := aofDirOf(in.Snapshot)
	st.PrevKnown, st.PrevFree = in.Snapshot.Host.Available && d.Known, d.Free
	return ds, nil, st
}

func (st *rewriteRetryState) decide(in Input, r *RewriteRetryConfig, sh *Shared) []Decision {
	s := in.Snapshot
	info, cfg := s.Redis.Info, s.Redis.Config
	held, isHeld := in.Held[SettingRewritePercent]
	mine := isHeld && held.Remedy == RemedyRewriteRetry
	failed := info.AOFEnabled && info.AOFLastBgrewriteStatus == "err"
	storm := RewriteStorm(info)
	wontFit := r.Predictive && RewriteWontFit(s)
	undo := func(detail string) []Decision {
		return []Decision{{Remedy: RemedyRewriteRetry, Action: ActUndo, Setting: SettingRewritePercent, Value: held.Original,
			Reason: IDAOFRewriteFailed, Detail: detail}}
	}
	if !failed {
		st.FailedAt, st.Attempt, st.NextRetry, st.LastTry = time.Time{}, 0, time.Time{}, time.Time{}
	}
	if !failed && !wontFit {
		// Yields are per remedy: this ends only rewrite_retry's own episode.
		sh.EndEpisode(RemedyRewriteRetry, SettingRewritePercent)
		sh.EndSuppression(RemedyRewriteRetry)
	}
	if mine {
		switch {
		case !info.AOFEnabled:
			return undo("AOF is off")
		case in.Stopping:
			// Keep the hold while rewrites still fail at fork (a restart of the
			// guardian must not restart the storm); give it back otherwise.
			if failed || wontFit {
				return nil
			}
			return undo("the guardian is stopping and rewrites succeed again")
		case !failed && !st.roomy(s):
			return nil // a rewrite succeeded, but the next one would not fit with room to spare
		case !failed:
			return undo("an AOF rewrite succeeded and the next one fits: Redis's automatic rewrites are back")
		}
		return st.retry(in, r, sh)
	}
	if limited(info) && !isHeld && !in.Stopping {
		return st.retryLimited(in, r, sh)
	}
	if in.Stopping || isHeld || !info.AOFEnabled || cfg.Int(SettingRewritePercent, 100) == 0 || sh.IsYielded(RemedyRewriteRetry, SettingRewritePercent) {
		// Another remedy holds the percentage (the load deferral), or it is 0
		// already: the automatic rewrites are stopped either way.
		return nil
	}
	var reason, detail string
	urgent := false
	switch {
	case storm:
		// Every cron tick adds an INCR file until the hold is applied: it goes
		// first in its tick and does not wait for the ledger's fsync.
		reason, urgent = IDAOFRewriteStorm, true
		detail = "automatic AOF rewrites fail at fork and Redis does not count those failures: stop them before every cron tick adds an INCR file"
	case wontFit:
		reason = IDAOFRewriteWontFit
		detail = fmt.Sprintf("a rewrite needs about %s for its new base and %s has %s free: do not let Redis start one",
			HumanBytes(ExpectedRewrite(s)), aofDirOf(s).Path, HumanBytes(int64(aofDirOf(s).Free)))
	default:
		return nil
	}
	return sh.Gate(r.Limits, in.Now, Decision{Remedy: RemedyRewriteRetry, Action: ActSet, Setting: SettingRewritePercent, Value: "0",
		Reason: reason, Detail: detail, Urgent: urgent})
}

// retry decides the guardian's own BGREWRITEAOF while it holds the percentage:
// at once when a reading says the cause cleared, else by backoff; never while a
// child runs or when the new base cannot fit.
func (st *rewriteRetryState) retry(in Input, r *RewriteRetryConfig, sh *Shared) []Decision {
	s := in.Snapshot
	info := s.Redis.Info
	if info.AOFLastBgrewriteStatus != "err" {
		return nil // held only for the disk: nothing to retry
	}
	if st.FailedAt.IsZero() {
		st.FailedAt = in.Now
		st.NextRetry = in.Now.Add(Backoff(0, r.InitialBackoff, r.MaxBackoff, in.Rand))
	}
	if info.ForkChildRunning() || info.AOFRewriteScheduled || info.Loading || RewriteWontFit(s) || OtherForkRunning(s) {
		return nil
	}
	cleared := st.causeCleared(s, r, in.Now)
	if cleared == "" && in.Now.Before(st.NextRetry) {
		return nil
	}
	if !sh.Allowed(RemedyRewriteRetry, r.Limits, in.Now) {
		return nil
	}
	st.NextRetry = in.Now.Add(Backoff(st.Attempt+1, r.InitialBackoff, r.MaxBackoff, in.Rand))
	st.LastTry = in.Now
	detail := fmt.Sprintf("retry %d after the rewrite failed %s ago", st.Attempt+1, round(in.Now.Sub(st.FailedAt)))
	if cleared != "" {
		detail = cleared + ": rewriting now"
	}
	return []Decision{{Remedy: RemedyRewriteRetry, Action: ActBgrewriteaof, Reason: IDAOFRewriteFailed, Detail: detail}}
}

// limited reports whether Redis's own rewrite limiter has engaged: the last
// rewrite failed in its child (counted) at least redisRewriteLimit times in a
// row, so Redis waits minutes before its next automatic attempt.
func limited(info monitor.Info) bool {
	return info.AOFEnabled && info.AOFLastBgrewriteStatus == "err" &&
		info.AOFRewritesConsecutiveFailures >= redisRewriteLimit && !info.AOFRewriteInProgress
}

// retryLimited runs BGREWRITEAOF while Redis's limiter delays its own attempts,
// but only when a reading says the cause cleared: the blind retries are the
// limiter's. Nothing is held, so nothing is given back.
func (st *rewriteRetryState) retryLimited(in Input, r *RewriteRetryConfig, sh *Shared) []Decision {
	s := in.Snapshot
	info := s.Redis.Info
	if st.FailedAt.IsZero() {
		st.FailedAt = in.Now
	}
	if info.ForkChildRunning() || info.AOFRewriteScheduled || info.Loading || RewriteWontFit(s) || OtherForkRunning(s) {
		return nil
	}
	cleared := st.causeCleared(s, r, in.Now)
	if cleared == "" || !sh.Allowed(RemedyRewriteRetry, r.Limits, in.Now) {
		return nil
	}
	st.LastTry = in.Now
	return []Decision{{Remedy: RemedyRewriteRetry, Action: ActBgrewriteaof, Reason: IDAOFRewriteFailed,
		Detail: fmt.Sprintf("%s after %d failed rewrites in a row (Redis's limiter would wait minutes): rewriting now",
			cleared, info.AOFRewritesConsecutiveFailures)}}
}

// causeCleared says which reading shows the rewrite's cause has gone since the
// previous tick: a fork succeeded (total_forks rose, e.g. a BGSAVE; only when
// the rewrite failed at fork, since a killed child was forked too), a save
// succeeded (its child survived), or the AOF dir has room again. A cleared sign
// starts a retry at most every min(initial_backoff, 30 s).
func (st *rewriteRetryState) causeCleared(s monitor.Snapshot, r *RewriteRetryConfig, now time.Time) string {
	if !st.LastTry.IsZero() && now.Sub(st.LastTry) < min(r.InitialBackoff, maxClearedGap) {
		return ""
	}
	info := s.Redis.Info
	atFork := info.AOFRewritesConsecutiveFailures == 0
	if atFork && st.PrevForks > 0 && info.TotalForks > st.PrevForks && !info.ForkChildRunning() {
		return "a fork succeeded since the last tick"
	}
	if st.PrevSave > 0 && info.RDBLastSaveTime > st.PrevSave && info.RDBLastBgsaveStatus == "ok" && !info.ForkChildRunning() {
		return "a save succeeded since the last tick"
	}
	d := aofDirOf(s)
	exp := uint64(max(ExpectedRewrite(s), 0))
	if st.PrevKnown && s.Host.Available && d.Known && st.PrevFree < exp && d.Free >= exp {
		return fmt.Sprintf("the AOF dir has room again (%s free)", HumanBytes(int64(d.Free)))
	}
	return ""
}

// roomy reports whether the next rewrite fits with room to spare (the same
// margin as the predictive stop-writes toggle), so a held percentage is not
// given back and taken again as free space swings.
func (st *rewriteRetryState) roomy(s monitor.Snapshot) bool {
	exp := ExpectedRewrite(s)
	return !(s.Host.Available && exp > 0 && wontFit(aofDirOf(s), exp+predictiveMargin(exp)))
}
