package policy

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// RemedyForkBudget keeps the fork children of a host's Redis instances within a
// budget: at most max_concurrent at once, across every instance of every
// guardian process of the host, and none whose expected copy-on-write does not
// fit the memory it will be charged to. Three redis-servers in one memory
// cgroup whose automatic saves came due together ran three children at once,
// and the OOM killer took a redis-server main process (redis-facts.md).
//
// The slots are lock files in the runtime directory (internal/forkslot); the
// snapshot says who holds them (monitor.ForkView), and the remedy decides from
// it, purely:
//   - a fork child of this instance runs: it takes a slot (or keeps its own). A
//     child started while every slot was taken (an operator's BGSAVE, a
//     replica's full sync) cannot be stopped: the executor logs the host over
//     budget, and nothing is killed;
//   - Redis's automatic save comes due (the poll window of NextPoll): the
//     instance takes a slot before Redis forks. When none is free, the executor
//     holds `save ""` instead, in the same step (the save fires at Redis's next
//     cron, no later tick could come first), through the ledger like every
//     held setting: recorded before it is made, given back on stop, yielded to
//     an operator who changes it, and a CONFIG REWRITE during the hold caught;
//   - the expected copy-on-write (rdb_last_cow_size or current_cow_peak, else a
//     quarter of the RSS) with the margin does not fit the room (MemAvailable,
//     or the cgroup's limit less its working set, whichever is less): the save
//     is held too (fork_wont_fit);
//   - while `save` is held: once a slot is free and the room fits, the executor
//     takes the slot and then gives `save` back in one step (fork_resume), so
//     Redis starts the overdue save at its next cron tick holding the slot;
//   - after max_deferral `save` is given back whatever the slots say, and a
//     critical fork_deferred says so until a save succeeds: never silence;
//   - no child: the slot is released once the grace after taking it has passed
//     (the child appears at Redis's next cron, about 100 ms later).
//
// The guardian's own BGSAVE and BGREWRITEAOF (bgsave_retry, rewrite_retry,
// rewrite_deferral) take a slot in the executor before they are sent
// (remediate.Executor.OwnForksTakeSlots), and this remedy gives it back once
// their child has ended, as for an automatic save.
//
// A hold is bounded by max_deferral, not by an hourly cap: the remedy's actions
// (a slot per save) are not rate limited.
const RemedyForkBudget = "fork_budget"

// SettingSave is the setting fork_budget holds empty while a due save waits.
const SettingSave = "save"

// Fork slot actions, carried out by pkg/remediate through its ForkSlots.
const (
	// ActForkSlotTake takes a slot for this instance (it keeps one it holds).
	// With Setting, when no slot is free it holds Setting at Value through the
	// ledger instead: the save it makes wait would fire before another tick.
	ActForkSlotTake Action = "fork_slot_take"
	// ActForkSlotRelease gives the instance's slot back.
	ActForkSlotRelease Action = "fork_slot_release"
	// ActForkResume takes a slot and, once it holds one, gives Setting back
	// (ActUndo); with no slot free it does nothing.
	ActForkResume Action = "fork_resume"
)

// Finding ids of fork_budget.
const (
	IDForkDeferred       = "fork_deferred"
	IDForkWontFit        = "fork_wont_fit"
	IDForkBudgetMismatch = "fork_budget_mismatch"
)

var saveSetting = Setting{Name: SettingSave, Normalize: normalizeSave, Valid: validSave}

var forkBudget = Def[ForkBudgetConfig, forkBudgetState]{
	Name:     RemedyForkBudget,
	Settings: []Setting{saveSetting},
	Defaults: func() *ForkBudgetConfig {
		return &ForkBudgetConfig{
			Limits:        Limits{Enabled: true, MaxPerHour: 100000},
			MaxConcurrent: 1,
			MaxDeferral:   5 * time.Minute,
			Margin:        0.2,
			Grace:         3 * time.Second,
			EarlySave:     true,
			EarlyLead:     0.25,
			QuietRatio:    0.5,
		}
	},
	Decide: decideForkBudget,
}

// ForkBudgetConfig configures the host's fork budget. MaxConcurrent must be the
// same for every instance of a host (it is the number of slot files).
type ForkBudgetConfig struct {
	Limits
	MaxConcurrent int
	MaxDeferral   time.Duration
	// Margin is the share of the expected copy-on-write added before comparing
	// it with the room.
	Margin float64
	// Grace is how long a slot taken for a due save is kept with no child.
	Grace time.Duration
	// EarlySave starts a save that comes due within the last EarlyLead share of
	// its save point's seconds at a quiet moment: writes over the last tick at
	// no more than QuietRatio of their rate since the last save
	// (forkbudget_early.go).
	EarlySave  bool
	EarlyLead  float64
	QuietRatio float64
}

// Configure reads remedies.fork_budget.
func (c *ForkBudgetConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Int("max_concurrent", &c.MaxConcurrent, 1)
	p.Duration("max_deferral", &c.MaxDeferral, time.Second)
	p.Positive("margin", &c.Margin)
	p.Duration("grace", &c.Grace, 100*time.Millisecond)
	p.Bool("early_save", &c.EarlySave)
	p.Positive("early_lead", &c.EarlyLead)
	p.Positive("quiet_ratio", &c.QuietRatio)
	if c.EarlyLead >= 1 {
		p.Problem("early_lead", "%g must be below 1 (a share of the save point's seconds)", c.EarlyLead)
	}
	if c.QuietRatio > 1 {
		p.Problem("quiet_ratio", "%g must be at most 1 (a share of the write rate since the last save)", c.QuietRatio)
	}
}

type forkBudgetState struct {
	// TakenAt is when the slot was taken for a due save (zero: not for one).
	TakenAt time.Time
	// ForcedAt is when a hold ended at max_deferral; ForcedAfter how long it was.
	ForcedAt    time.Time
	ForcedAfter time.Duration
	// EarlyAt is when an early save was last started.
	EarlyAt time.Time
	// Seen is the previous tick's reading of the changes since the last save,
	// for the rate of writes over one tick (Input.Prev may be older: the last
	// full read).
	Seen changeSample
	// ChildTakeAt is when a slot was last asked for a running child: asked
	// again at most once a second while every slot stays held, not at every
	// fast tick.
	ChildTakeAt time.Time
}

// childTakeEvery paces the take for a child that runs without a slot.
const childTakeEvery = time.Second

func decideForkBudget(in Input, c *ForkBudgetConfig, st forkBudgetState, sh *Shared) ([]Decision, []Finding, forkBudgetState) {
	s := in.Snapshot
	info, fv := s.Redis.Info, s.Fork
	held, isHeld := in.Held[SettingSave]
	ours := isHeld && held.Remedy == RemedyForkBudget
	undo := func(why string) Decision {
		return Decision{Remedy: RemedyForkBudget, Action: ActUndo, Setting: SettingSave, Value: held.Original, Reason: IDForkDeferred, Detail: why}
	}
	release := func(why string) Decision {
		return Decision{Remedy: RemedyForkBudget, Action: ActForkSlotRelease, Reason: IDForkDeferred, Detail: why}
	}
	last := st.Seen
	if s.Redis.Err == nil {
		st.Seen = changeSample{T: s.Time, Changes: info.RDBChangesSinceLastSave, LastSave: info.RDBLastSaveTime}
	}
	var fs []Finding
	if !st.ForcedAt.IsZero() {
		if info.RDBLastSaveTime >= st.ForcedAt.Unix() && info.RDBLastBgsaveStatus != "err" {
			st.ForcedAt, st.ForcedAfter = time.Time{}, 0
		} else {
			fs = append(fs, forcedFinding(c, st, fv))
		}
	}
	// Stopping, or turned off (a reload): give back what the remedy holds, take nothing.
	letGo := func(why string) []Decision {
		var ds []Decision
		if ours {
			ds = append(ds, undo(why))
		}
		if fv.Mine {
			ds = append(ds, release(why))
		}
		return ds
	}
	if in.Stopping {
		return letGo("the guardian is stopping"), fs, st
	}
	if isHeld && !ours {
		return nil, fs, st // another remedy's hold of save: not ours to judge
	}
	if !c.Enabled {
		return letGo("fork_budget is disabled"), fs, st
	}
	if fv.Known && len(fv.Beyond) > 0 {
		fs = append(fs, Finding{ID: IDForkBudgetMismatch, Severity: Warning,
			Summary: "another guardian of the host allows more fork children at once than this one",
			Cause:   fmt.Sprintf("%s, beyond fork_budget.max_concurrent %d here", strings.Join(fv.Beyond, ", "), fv.Slots),
			Fix:     "give every guardian of the host (every config, every @ unit) the same fork_budget.max_concurrent: the slots are numbered files in runtime_dir, and a guardian counts only those below its own max_concurrent"})
	}
	if !fv.Known {
		if ours {
			return []Decision{undo("the fork slots cannot be read (" + fv.Err + "): the save is not held without them")}, fs, st
		}
		return nil, fs, st
	}
	if info.ForkChildRunning() {
		st.TakenAt = time.Time{}
		if fv.Mine || !st.ChildTakeAt.IsZero() && in.Now.Sub(st.ChildTakeAt) < childTakeEvery {
			return nil, append(fs, deferredFindings(in, c, held, ours, fv, "")...), st
		}
		st.ChildTakeAt = in.Now
		return []Decision{{Remedy: RemedyForkBudget, Action: ActForkSlotTake, Reason: IDForkDeferred,
			Detail: "a fork child runs (" + childKind(info) + ")"}}, append(fs, deferredFindings(in, c, held, ours, fv, "")...), st
	}
	save := s.Redis.Config["save"]
	if ours {
		save = held.Original
	}
	due := saveDue(in, save)
	exp, room, fits := forkRoom(s, c.Margin)
	if ours {
		ds, more := st.whileDeferred(in, c, held, due, exp, room, fits, undo)
		return ds, append(fs, more...), st
	}
	if fv.Mine && st.TakenAt.IsZero() && due {
		// A slot kept from a child that ended with a save still due (it failed,
		// or the slot was taken before a restart of the guardian): the grace
		// starts now, so a save that keeps failing does not keep the slot.
		st.TakenAt = in.Now
	}
	if fv.Mine && (st.TakenAt.IsZero() || in.Now.Sub(st.TakenAt) >= c.Grace) {
		st.TakenAt = time.Time{}
		return []Decision{release("no fork child runs")}, fs, st
	}
	if !due || fv.Mine || sh.IsYielded(RemedyForkBudget, SettingSave) || !st.ForcedAt.IsZero() {
		// (A save let go at max_deferral is not deferred again before it
		// succeeded: the critical finding stands meanwhile.)
		if !due {
			sh.EndEpisode(RemedyForkBudget, SettingSave)
			if d, ok := st.earlySave(in, c, save, fits, last); ok {
				return []Decision{d}, fs, st
			}
		}
		return nil, fs, st
	}
	hold := Decision{Remedy: RemedyForkBudget, Setting: SettingSave, Value: "", Reason: IDForkDeferred, FileValue: saveFileValue(s)}
	if !fits {
		hold.Action, hold.Reason = ActSet, IDForkWontFit
		hold.Detail = "defer the due save: " + wontFitText(exp, room, fits, c.Margin)
		return []Decision{hold}, append(fs, Finding{ID: IDForkWontFit, Severity: Warning,
			Summary: "a due save's copy-on-write does not fit the memory it would be charged to",
			Cause:   wontFitText(exp, room, fits, c.Margin),
			Fix:     "the save waits for room (at most fork_budget.max_deferral); free memory or raise the cgroup's limit"}), st
	}
	if ahead := fv.Ahead(time.Time{}); len(ahead) > 0 {
		// Saves that waited longer go first: this one waits its turn, even
		// with a slot free now (the first of them takes it at its next tick).
		hold.Action = ActSet
		hold.Detail = "an automatic save is due: defer it, in turn behind " + strings.Join(ahead, ", ") + ", who waited first"
		return []Decision{hold}, fs, st
	}
	st.TakenAt = in.Now
	hold.Action = ActForkSlotTake
	hold.Detail = "an automatic save is due: take a fork slot, or defer the save while " + orText(strings.Join(fv.Others, ", "), "others") + " hold every slot"
	return []Decision{hold}, fs, st
}

// whileDeferred decides for a save the remedy holds off: let it go at
// max_deferral, give it back when no save is due any more, resume it when a slot
// is free and the room fits, else keep waiting and say why.
func (st *forkBudgetState) whileDeferred(in Input, c *ForkBudgetConfig, held Held, due bool, exp, room int64, fits bool,
	undo func(string) Decision) ([]Decision, []Finding) {
	fv := in.Snapshot.Fork
	d := in.Now.Sub(held.Since)
	switch {
	case d >= c.MaxDeferral:
		st.ForcedAt, st.ForcedAfter = in.Now, d
		return []Decision{undo(fmt.Sprintf("the save waited %s, fork_budget.max_deferral", round(d)))}, []Finding{forcedFinding(c, *st, fv)}
	case !due:
		return []Decision{undo("no automatic save is due any more")}, nil
	case fits && !fv.Mine && fv.Free() > 0 && len(fv.Ahead(held.Since)) > 0:
		ahead := fv.Ahead(held.Since)
		return nil, deferredFindings(in, c, held, true, fv, "a fork slot is free, but "+strings.Join(ahead, ", ")+" waited first and go first")
	case fits && (fv.Mine || fv.Free() > 0):
		st.TakenAt = in.Now
		return []Decision{{Remedy: RemedyForkBudget, Action: ActForkResume, Setting: SettingSave, Value: held.Original, Reason: IDForkDeferred,
			Detail: fmt.Sprintf("a fork slot is free after %s: the due save runs now", round(d))}}, nil
	}
	return nil, deferredFindings(in, c, held, true, fv, wontFitText(exp, room, fits, c.Margin))
}

// forcedFinding is the critical finding of a save let go at max_deferral, until
// a save succeeds.
func forcedFinding(c *ForkBudgetConfig, st forkBudgetState, fv monitor.ForkView) Finding {
	return Finding{ID: IDForkDeferred, Severity: Critical,
		Summary: fmt.Sprintf("an automatic save waited %s for the host's fork budget and was let go without a slot", round(st.ForcedAfter)),
		Cause:   fmt.Sprintf("fork_budget.max_deferral %s passed; slots held by %s", c.MaxDeferral, orText(strings.Join(fv.Others, ", "), "nobody now")),
		Fix:     "the host's saves take longer than the budget allows: spread the instances' save points, give the host (or cgroup) more memory, or raise fork_budget.max_concurrent if the memory has room for more children at once"}
}

// saveFileValue is what Redis's config file means for save when the hold is
// decided, recorded to tell a CONFIG REWRITE during the hold afterwards. A file
// without a save line means Redis's default save points (the live value then),
// never "": that is the held value, and a file found saying `save ""` after the
// hold would be taken for the operator's own choice and left unrepaired (the
// next restart would run without saves).
func saveFileValue(s monitor.Snapshot) string {
	f := s.Redis.File
	if !f.Known {
		return ""
	}
	if l, ok := f.Lines[SettingSave]; ok {
		return l.Value
	}
	return s.Redis.Config[SettingSave]
}

// deferredFindings says how long the save has waited and why, while it is held.
func deferredFindings(in Input, c *ForkBudgetConfig, held Held, ours bool, fv monitor.ForkView, why string) []Finding {
	if !ours {
		return nil
	}
	if why == "" {
		why = "every fork slot is held by " + orText(strings.Join(fv.Others, ", "), "other instances")
	}
	d := in.Now.Sub(held.Since)
	return []Finding{{ID: IDForkDeferred, Severity: Warning,
		Summary: fmt.Sprintf("an automatic save has waited %s for the host's fork budget", round(d)),
		Cause:   why,
		Fix:     fmt.Sprintf("nothing yet: save is given back when a slot frees, at the latest after fork_budget.max_deferral (%s)", c.MaxDeferral)}}
}

func childKind(info monitor.Info) string {
	switch {
	case info.RDBBgsaveInProgress:
		return "rdb_bgsave_in_progress"
	case info.AOFRewriteInProgress:
		return "aof_rewrite_in_progress"
	}
	return "module_fork_in_progress"
}

// forkDueLead is how long before its poll window a save counts as due for the
// fork budget: the slot is taken, or save held, up to this much before Redis
// can fork. The close polls begin only 250 ms before the save point; on a
// loaded host a tick that came later than that let Redis fork first (the bench,
// 2 of 9 guarded runs: 2 and 3 children at once). A second before, a regular
// 1 s tick falls in the window too. A slot taken early is kept for grace (3 s)
// for the child to appear.
const forkDueLead = time.Second

// saveDue reports whether an automatic save with save points save is due for
// the fork budget: its poll window (NextPoll's) opens within forkDueLead, or
// has passed while it was held.
func saveDue(in Input, save string) bool {
	s := in.Snapshot
	cfg := maps.Clone(s.Redis.Config)
	cfg["save"] = save
	s.Redis.Config = cfg
	start, _, ok := nextSaveWindow(s, in.Prev, in.Now)
	return ok && !start.After(in.Now.Add(forkDueLead))
}

// ExpectedCOW is what a fork child of the instance is expected to copy: the last
// save's copy-on-write, or the peak of the current child's, else a quarter of
// the RSS (no save measured yet).
func ExpectedCOW(s monitor.Snapshot) int64 {
	info := s.Redis.Info
	if c := max(info.RDBLastCOWSize, info.CurrentCOWPeak); c > 0 {
		return c
	}
	return max(info.UsedMemoryRSS, 0) / 4
}

// forkRoom compares the expected copy-on-write, with the margin, with the room
// of the memory it is charged to; an unknown room fits.
func forkRoom(s monitor.Snapshot, margin float64) (exp, room int64, fits bool) {
	exp = ExpectedCOW(s)
	h := s.Host
	room = -1
	if h.Available && h.MemAvailable > 0 {
		room = int64(h.MemAvailable)
	}
	if cg := h.Cgroup; cg.Known && cg.MemoryMax > 0 {
		r := max(int64(cg.MemoryMax)-int64(max(cg.WorkingSet, 0)), 0)
		if room < 0 || r < room {
			room = r
		}
	}
	if room < 0 || exp <= 0 {
		return exp, room, true
	}
	return exp, room, float64(exp)*(1+margin) <= float64(room)
}

func wontFitText(exp, room int64, fits bool, margin float64) string {
	if fits {
		return ""
	}
	return fmt.Sprintf("expected copy-on-write %s, %s with the %.0f%% margin, against %s of room",
		HumanBytes(exp), HumanBytes(int64(float64(exp)*(1+margin))), margin*100, HumanBytes(room))
}

// OtherForkRunning reports whether another instance of the host holds a fork
// slot and none is free: a BGSAVE or BGREWRITEAOF of the guardian's own must
// not start then.
func OtherForkRunning(s monitor.Snapshot) bool {
	return s.Fork.Known && !s.Fork.Mine && len(s.Fork.Others) > 0 && s.Fork.Free() == 0
}

// normalizeSave reads save points canonically: one space between numbers, no
// quotes ("" and `""` are the empty setting).
func normalizeSave(v string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(v, `"`, "")), " ")
}

// validSave accepts any save points an operator may have had: empty, or pairs
// of non-negative integers.
func validSave(v string) error {
	f := strings.Fields(strings.ReplaceAll(v, `"`, ""))
	if len(f)%2 != 0 {
		return errors.New("not pairs of seconds and changes")
	}
	for _, n := range f {
		if x, err := strconv.ParseInt(n, 10, 64); err != nil || x < 0 {
			return errors.New("not pairs of non-negative integers")
		}
	}
	return nil
}
