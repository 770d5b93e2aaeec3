package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RemedyDefrag holds Redis's active defragmentation on while the allocator's
// fragmentation is high (fragmentation_high: allocator_active -
// allocator_allocated above the thresholds), with a bounded
// active-defrag-cycle-max, and gives both back when fragmentation is down,
// when defrag makes no progress, and when the guardian stops. Opt-in: active
// defrag spends up to active-defrag-cycle-max percent of the main thread.
//
// Whether a build can defrag is not in INFO or CONFIG GET: it needs Redis's
// bundled jemalloc (with the defrag hint), and every Debian package here (redis
// 7.0.15 and 8.0.2, valkey 8.0.1 and 8.1.1) refuses `CONFIG SET activedefrag
// yes` ("Active defragmentation cannot be enabled: it requires a ... modified
// Jemalloc"; 7.0+ wraps it in "ERR CONFIG SET failed (possibly related to
// argument 'activedefrag')"), while `activedefrag no` is accepted everywhere.
// So the only probe is setting yes, which is a change: rather than a separate
// probe with its own bookkeeping, the remedy's own first attempt is the probe.
// It goes through the executor like every set (ledger first, with the
// original; on a refusal the executor reads the live value back, finds the
// original and drops the entry), and Observe learns the refusal from the
// executor's error (DefragRefused). The lesson is kept per instance (each has
// its own state) and per run_id: a restart, possibly into another binary,
// learns again, once. While it holds, no further attempt is made and the
// finding says "this build refuses activedefrag" with the fix that works: fail
// over to a replica and restart this server, which returns about the
// allocator's fragmented bytes.
//
// Nothing half-applied: the bound comes first, so defrag never runs unbounded
// on the guardian's account. When the live active-defrag-cycle-max is above
// max_cycle (Redis's default is 25, the remedy's too, so it is normally left
// alone), it is lowered in one tick and activedefrag is set at a later tick,
// once the bound is held; a refused activedefrag then gives the bound back at
// the next tick (the refusal is known), and the ledger is empty again. A bound
// that fails to set (ACL) stops the remedy there: activedefrag is not tried.
//
// No progress: while it holds activedefrag, it marks allocator fragmentation
// and active_defrag_hits; either falling fragmentation (by at least 1%) or
// rising hits is progress and moves the mark. With no progress for window
// (Redis's own active-defrag-ignore-bytes and threshold-lower can keep defrag
// from running at all), it gives both back and does not try again for
// retry_after; the finding then gives the restart fix.
//
// An operator wins: activedefrag already yes is theirs (never held); one they
// change during the hold is yielded by reconciliation and, with it, the bound
// is given back; a bound they change is theirs while activedefrag stays held.
// Neither is taken again until fragmentation has cleared.
const RemedyDefrag = "defrag"

// The settings defrag holds.
const (
	SettingActiveDefrag   = "activedefrag"
	SettingDefragCycleMax = "active-defrag-cycle-max"
)

// defragProgress is the share by which fragmentation must fall to count as
// progress (jitter of a few pages is not).
const defragProgress = 0.01

var defrag = Def[DefragConfig, defragState]{
	Name: RemedyDefrag,
	Settings: []Setting{
		{Name: SettingActiveDefrag, Valid: validYesNo},
		{Name: SettingDefragCycleMax, Normalize: normalizeInt, Valid: validDefragCycle},
	},
	Defaults: func() *DefragConfig {
		return &DefragConfig{Limits: Limits{Enabled: false, MaxPerHour: 6}, // opt-in: it spends main-thread time
			MaxCycle: 25, Window: 10 * time.Minute, RetryAfter: time.Hour}
	},
	Decide:  decideDefrag,
	Observe: observeDefrag,
}

// DefragConfig configures remedies.defrag.
type DefragConfig struct {
	Limits
	// MaxCycle bounds active-defrag-cycle-max (percent of the main thread) while
	// activedefrag is held: a higher live value is lowered to it first.
	MaxCycle int
	// Window is how long defrag may go without progress before it is given back.
	Window time.Duration
	// RetryAfter is how long after a hold without progress the remedy waits
	// before it tries again.
	RetryAfter time.Duration
}

// Configure reads remedies.defrag.
func (c *DefragConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Int("max_cycle", &c.MaxCycle, 1)
	if c.MaxCycle > 99 {
		p.Problem("max_cycle", "%d is above 99, the highest active-defrag-cycle-max Redis takes", c.MaxCycle)
	}
	p.Duration("window", &c.Window, time.Minute)
	p.Duration("retry_after", &c.RetryAfter, time.Minute)
}

// defragState is what defrag learnt about one server (runID).
type defragState struct {
	runID string
	// refused is the server's answer to CONFIG SET activedefrag yes when it
	// refused it on runID: this build cannot defrag, and is not asked again.
	refused string
	// failed is the last other failure of that set (ACL, a renamed CONFIG).
	failed string
	// The progress mark while activedefrag is held: when, the fragmentation
	// and active_defrag_hits then.
	markAt   time.Time
	markFrag int64
	markHits int64
	// stalledUntil: a hold ended without progress; not tried again before it.
	stalledUntil time.Time
	stalled      string
}

// DefragRefused reports whether an error of CONFIG SET activedefrag yes is the
// server saying its build cannot defrag (not an ACL or a connection failure).
func DefragRefused(err string) bool {
	return strings.Contains(err, "Active defragmentation cannot be enabled")
}

// validDefragCycle accepts active-defrag-cycle-max's range (1 to 99).
func validDefragCycle(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 99 {
		return errors.New("not an integer from 1 to 99")
	}
	return nil
}

// observeDefrag learns from the answer to CONFIG SET activedefrag yes.
func observeDefrag(st defragState, o Outcome) defragState {
	if o.Decision.Action != ActSet || o.Decision.Setting != SettingActiveDefrag {
		return st
	}
	switch {
	case o.OK:
		st.failed = ""
	case DefragRefused(o.Err):
		st.refused = o.Err
	default:
		st.failed = o.Err
	}
	return st
}

// defragView is one tick's reading for the remedy.
type defragView struct {
	frag        int64
	ratio       float64
	high        bool
	adHeld      bool // activedefrag held by defrag
	cmHeld      bool // active-defrag-cycle-max held by defrag
	cmHeldValue string
}

func decideDefrag(in Input, r *DefragConfig, st defragState, sh *Shared) ([]Decision, []Finding, defragState) {
	info := in.Snapshot.Redis.Info
	if st.runID != info.RunID {
		st = defragState{runID: info.RunID} // another server (a restart): learn again
	}
	var v defragView
	frag, ratio, ok := allocatorFrag(&info)
	v.frag, v.ratio, v.high = frag, ratio, ok && fragHigh(frag, ratio, in.Thresholds)
	if h, held := in.Held[SettingActiveDefrag]; held && h.Remedy == RemedyDefrag {
		v.adHeld = true
	}
	if h, held := in.Held[SettingDefragCycleMax]; held && h.Remedy == RemedyDefrag {
		v.cmHeld, v.cmHeldValue = true, h.Value
	}
	if !v.high {
		sh.EndEpisode(RemedyDefrag, SettingActiveDefrag)
		sh.EndEpisode(RemedyDefrag, SettingDefragCycleMax)
		sh.EndSuppression(RemedyDefrag)
	}
	if !v.adHeld {
		st.markAt = time.Time{}
	}
	why := defragGiveBackWhy(in, r, st, sh, v)
	if why == "" && v.adHeld {
		st, why = defragProgressCheck(in, r, st, v)
	}
	if why != "" {
		return defragGiveBack(in, v, why), defragFindings(in, r, st, v), st
	}
	if v.adHeld {
		return nil, defragFindings(in, r, st, v), st
	}
	return defragTake(in, r, sh, v), defragFindings(in, r, st, v), st
}

// defragGiveBackWhy says why the remedy must not hold now ("" when it may).
func defragGiveBackWhy(in Input, r *DefragConfig, st defragState, sh *Shared, v defragView) string {
	switch {
	case in.Stopping:
		return "the guardian stops"
	case !r.Enabled:
		return "remedies.defrag is off"
	case !v.high:
		return fmt.Sprintf("allocator fragmentation is down to %s (ratio %.2f)", HumanBytes(v.frag), v.ratio)
	case st.refused != "":
		return "this build refuses activedefrag"
	case sh.IsYielded(RemedyDefrag, SettingActiveDefrag):
		return "activedefrag was changed by someone else: theirs now"
	case !v.adHeld && in.Now.Before(st.stalledUntil):
		return "active defrag made no progress"
	}
	return ""
}

// defragProgressCheck moves the progress mark while activedefrag is held, and
// says why to give it back when there was none for the window. The readings
// are taken at the time the memory and stats sections were read.
func defragProgressCheck(in Input, r *DefragConfig, st defragState, v defragView) (defragState, string) {
	t, hits := StatsTime(in), in.Snapshot.Redis.Info.ActiveDefragHits
	fell := float64(v.frag) < float64(st.markFrag)*(1-defragProgress)
	if st.markAt.IsZero() || fell || hits > st.markHits {
		st.markAt, st.markFrag, st.markHits = t, v.frag, hits
		return st, ""
	}
	if t.Sub(st.markAt) < r.Window {
		return st, ""
	}
	st.stalled = fmt.Sprintf("active defrag made no progress for %s: allocator fragmentation %s (%s at the mark), active_defrag_hits %d (unchanged)",
		round(t.Sub(st.markAt)), HumanBytes(v.frag), HumanBytes(st.markFrag), hits)
	if !in.Snapshot.Redis.Info.ActiveDefragRunning {
		st.stalled += "; active_defrag_running 0: Redis's own active-defrag-ignore-bytes or active-defrag-threshold-lower may keep it from starting"
	}
	st.stalledUntil = in.Now.Add(r.RetryAfter)
	st.markAt = time.Time{}
	return st, st.stalled
}

// defragGiveBack undoes what the remedy holds: activedefrag first, so defrag
// stops before its bound is lifted.
func defragGiveBack(in Input, v defragView, why string) []Decision {
	var ds []Decision
	if v.adHeld {
		ds = append(ds, Decision{Remedy: RemedyDefrag, Action: ActUndo, Setting: SettingActiveDefrag, Value: in.Held[SettingActiveDefrag].Original,
			Reason: IDFragmentationHigh, Detail: why + ": give activedefrag back"})
	}
	if v.cmHeld {
		ds = append(ds, Decision{Remedy: RemedyDefrag, Action: ActUndo, Setting: SettingDefragCycleMax, Value: in.Held[SettingDefragCycleMax].Original,
			Reason: IDFragmentationHigh, Detail: why + ": give active-defrag-cycle-max back"})
	}
	return ds
}

// defragTake is the step towards the hold: the bound first when the live
// active-defrag-cycle-max is above max_cycle, then activedefrag yes.
func defragTake(in Input, r *DefragConfig, sh *Shared, v defragView) []Decision {
	cfg, info := in.Snapshot.Redis.Config, in.Snapshot.Redis.Info
	live, known := cfg[SettingActiveDefrag]
	cm, cmErr := strconv.Atoi(strings.TrimSpace(cfg[SettingDefragCycleMax]))
	if !known || cmErr != nil || defaultNormalize(live) != "no" || strings.HasPrefix(info.MemAllocator, "libc") {
		return nil // unknown, the operator's activedefrag, or a build that cannot defrag by construction
	}
	if h, held := in.Held[SettingActiveDefrag]; held && h.Remedy != RemedyDefrag {
		return nil
	}
	if h, held := in.Held[SettingDefragCycleMax]; held && h.Remedy != RemedyDefrag {
		return nil
	}
	cause := fmt.Sprintf("the allocator holds %s in fragmented pages (ratio %.2f)", HumanBytes(v.frag), v.ratio)
	if cm > r.MaxCycle && !v.cmHeld && !sh.IsYielded(RemedyDefrag, SettingDefragCycleMax) {
		return sh.Gate(r.Limits, in.Now, Decision{Remedy: RemedyDefrag, Action: ActSet, Setting: SettingDefragCycleMax, Value: strconv.Itoa(r.MaxCycle),
			Reason: IDFragmentationHigh, Detail: fmt.Sprintf("%s: bound active defrag to %d%% of the main thread before turning it on (was %d%%)", cause, r.MaxCycle, cm)})
	}
	bound := cm
	if v.cmHeld {
		bound, _ = strconv.Atoi(v.cmHeldValue)
	}
	return sh.Gate(r.Limits, in.Now, Decision{Remedy: RemedyDefrag, Action: ActSet, Setting: SettingActiveDefrag, Value: "yes",
		Reason: IDFragmentationHigh, Detail: fmt.Sprintf("%s: turn active defrag on (active-defrag-cycle-max %d) until it is down", cause, bound)})
}

// defragFindings replace fragmentation_high's fix with what the remedy learnt
// or does (Evaluate lets a remedy's finding replace the diagnosed one of the
// same id). Without anything to add, diagnosis's own finding stands.
func defragFindings(in Input, r *DefragConfig, st defragState, v defragView) []Finding {
	if !r.Enabled || !v.high {
		return nil
	}
	s := in.Snapshot
	d := diag{s: s, t: in.Thresholds, info: &s.Redis.Info, cfg: s.Redis.Config}
	f, ok := d.allocatorFragmentation()
	if !ok {
		return nil
	}
	restart := restartFix(v.frag)
	switch {
	case st.refused != "":
		f.Cause += "; CONFIG SET activedefrag yes was refused: " + st.refused
		f.Fix = fmt.Sprintf("this build refuses activedefrag (its jemalloc is not Redis's bundled one, with the defrag hint), and the guardian asks again only once the server (or the guardian) restarts: "+
			"fail over to a replica and restart this server, which would return about %s (allocator_active - allocator_allocated)", HumanBytes(v.frag))
	case in.Now.Before(st.stalledUntil):
		f.Cause += "; " + st.stalled
		f.Fix = fmt.Sprintf("active defrag did not return it, so the guardian gave it back and tries again after %s: %s",
			st.stalledUntil.UTC().Format(time.RFC3339), restart)
	case v.adHeld:
		bound := "Redis's active-defrag-cycle-max"
		if v.cmHeld {
			bound = "active-defrag-cycle-max " + v.cmHeldValue
		} else if cm, ok := s.Redis.Config[SettingDefragCycleMax]; ok {
			bound = "active-defrag-cycle-max " + cm
		}
		f.Fix = fmt.Sprintf("the guardian holds activedefrag yes (%s, remedies.defrag) until fragmentation is below the thresholds, and gives it back if it makes no progress for %s; if it cannot keep up, %s",
			bound, r.Window, restart)
	case st.failed != "":
		f.Cause += "; the last CONFIG SET activedefrag yes failed: " + st.failed
	default:
		return nil
	}
	return []Finding{f}
}
