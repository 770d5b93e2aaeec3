package policy

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// forkInput is a healthy instance whose fork slots are read: one slot, free.
func forkInput() Input {
	in := decideInput()
	in.Snapshot.Time = now
	in.Snapshot.Fork = monitor.ForkView{Known: true, Slots: 1}
	return in
}

// saveDueNow makes the "save 3600 1" point come due now (a change since a save
// an hour ago).
func saveDueNow(in *Input) {
	in.Snapshot.Redis.Info.RDBLastSaveTime = now.Add(-3601 * time.Second).Unix()
}

func slotTaken(in *Input) { in.Snapshot.Fork.Others = []string{"other 42"} }
func slotMine(in *Input)  { in.Snapshot.Fork.Mine = true }
func childRuns(in *Input) { in.Snapshot.Redis.Info.RDBBgsaveInProgress = true }
func saveHeld(since time.Duration) func(*Input) {
	return func(in *Input) {
		in.Held[SettingSave] = Held{Setting: SettingSave, Original: "3600 1 300 100", Value: "", Remedy: RemedyForkBudget, Reason: IDForkDeferred, Since: now.Add(-since)}
		in.Snapshot.Redis.Config[SettingSave] = ""
	}
}

// waiterSince: another instance has waited for a slot for d.
func waiterSince(d time.Duration) func(*Input) {
	return func(in *Input) {
		in.Snapshot.Fork.Waiters = append(in.Snapshot.Fork.Waiters, monitor.ForkWaiter{Holder: "other 42", Since: now.Add(-d)})
	}
}

type forkStep struct {
	action  Action
	setting string
	value   string
}

func TestForkBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		setup    []func(*Input)
		want     []forkStep
		findings map[string]Severity
	}{
		{name: "no save due, no child: nothing"},
		{name: "a save comes due, slot free: take it or hold save", setup: []func(*Input){saveDueNow},
			want: []forkStep{{ActForkSlotTake, SettingSave, ""}}},
		{name: "a save comes due while others hold the slot: the same step holds save", setup: []func(*Input){saveDueNow, slotTaken},
			want: []forkStep{{ActForkSlotTake, SettingSave, ""}}},
		{name: "a save due, the slot is already mine: nothing", setup: []func(*Input){saveDueNow, slotMine}},
		{name: "a child runs without a slot: take one", setup: []func(*Input){childRuns},
			want: []forkStep{{ActForkSlotTake, "", ""}}},
		{name: "a child runs with its slot: nothing", setup: []func(*Input){childRuns, slotMine}},
		{name: "no child, a slot not taken for a save: release", setup: []func(*Input){slotMine},
			want: []forkStep{{ActForkSlotRelease, "", ""}}},
		{name: "held, the slot still taken: keep waiting, say so", setup: []func(*Input){saveDueNow, slotTaken, saveHeld(time.Minute)},
			findings: map[string]Severity{IDForkDeferred: Warning}},
		{name: "held, the slot frees: take it and give save back", setup: []func(*Input){saveDueNow, saveHeld(time.Minute)},
			want: []forkStep{{ActForkResume, SettingSave, "3600 1 300 100"}}},
		{name: "held past max_deferral: give save back, critical", setup: []func(*Input){saveDueNow, slotTaken, saveHeld(6 * time.Minute)},
			want:     []forkStep{{ActUndo, SettingSave, "3600 1 300 100"}},
			findings: map[string]Severity{IDForkDeferred: Critical}},
		{name: "held, no save due any more (a manual SAVE): give it back", setup: []func(*Input){slotTaken, saveHeld(time.Minute)},
			want: []forkStep{{ActUndo, SettingSave, "3600 1 300 100"}}},
		{name: "stopping: give save back and release", setup: []func(*Input){saveDueNow, slotMine, saveHeld(time.Minute), func(in *Input) { in.Stopping = true }},
			want: []forkStep{{ActUndo, SettingSave, "3600 1 300 100"}, {ActForkSlotRelease, "", ""}}},
		{name: "the copy-on-write does not fit: hold save", setup: []func(*Input){saveDueNow, func(in *Input) {
			in.Snapshot.Redis.Info.RDBLastCOWSize = 100 * mib
			in.Snapshot.Host.MemAvailable = uint64(110 * mib)
		}},
			want:     []forkStep{{ActSet, SettingSave, ""}},
			findings: map[string]Severity{IDForkWontFit: Warning}},
		{name: "the cgroup leaves no room: hold save", setup: []func(*Input){saveDueNow, func(in *Input) {
			in.Snapshot.Redis.Info.RDBLastCOWSize = 100 * mib
			in.Snapshot.Host.Cgroup = monitor.CgroupReading{Known: true, Version: 1, MemoryMax: uint64(500 * mib), WorkingSet: uint64(450 * mib)}
		}},
			want:     []forkStep{{ActSet, SettingSave, ""}},
			findings: map[string]Severity{IDForkWontFit: Warning}},
		{name: "held, the slot frees but the room does not fit: keep waiting", setup: []func(*Input){saveDueNow, saveHeld(time.Minute), func(in *Input) {
			in.Snapshot.Redis.Info.RDBLastCOWSize = 100 * mib
			in.Snapshot.Host.MemAvailable = uint64(110 * mib)
		}},
			findings: map[string]Severity{IDForkDeferred: Warning}},
		{name: "yielded to the operator: no new hold", setup: []func(*Input){saveDueNow, slotTaken, func(in *Input) {
			in.Yielded = []Yield{{Remedy: RemedyForkBudget, Setting: SettingSave}}
		}}},
		{name: "disabled while holding: give back, release", setup: []func(*Input){saveDueNow, slotMine, saveHeld(time.Minute), func(in *Input) {
			in.Remedies = DefaultRemedies()
			ConfigOf[*ForkBudgetConfig](in.Remedies).Enabled = false
		}},
			want: []forkStep{{ActUndo, SettingSave, "3600 1 300 100"}, {ActForkSlotRelease, "", ""}}},
		{name: "a save comes due, a slot free, another save waited first: wait in turn", setup: []func(*Input){saveDueNow, waiterSince(time.Minute)},
			want: []forkStep{{ActSet, SettingSave, ""}}},
		{name: "held, the slot frees, another save waited longer: keep waiting, say so", setup: []func(*Input){saveDueNow, saveHeld(time.Minute), waiterSince(2 * time.Minute)},
			findings: map[string]Severity{IDForkDeferred: Warning}},
		{name: "held, the slot frees, the other save waited less: take it", setup: []func(*Input){saveDueNow, saveHeld(2 * time.Minute), waiterSince(time.Minute)},
			want: []forkStep{{ActForkResume, SettingSave, "3600 1 300 100"}}},
		{name: "another guardian holds a slot beyond max_concurrent: say so", setup: []func(*Input){func(in *Input) {
			in.Snapshot.Fork.Beyond = []string{"fork-slot-1 held by cache 42"}
		}},
			findings: map[string]Severity{IDForkBudgetMismatch: Warning}},
		{name: "slots unreadable: no hold", setup: []func(*Input){saveDueNow, func(in *Input) { in.Snapshot.Fork = monitor.ForkView{Err: "permission denied"} }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := forkInput()
			for _, f := range tc.setup {
				f(&in)
			}
			res, _ := Evaluate(in, State{})
			var got []forkStep
			for _, d := range only(res.Decisions, RemedyForkBudget) {
				got = append(got, forkStep{d.Action, d.Setting, d.Value})
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(forkStep{})); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			gotF := map[string]Severity{}
			for _, f := range res.Findings {
				if f.ID == IDForkDeferred || f.ID == IDForkWontFit || f.ID == IDForkBudgetMismatch {
					gotF[f.ID] = f.Severity
				}
			}
			if len(tc.findings) == 0 {
				tc.findings = map[string]Severity{}
			}
			if diff := cmp.Diff(tc.findings, gotF); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForkBudgetGrace: a slot taken for a due save is kept for the grace while
// no child has appeared yet, released after it; a child that ran and ended
// releases it at once.
func TestForkBudgetGrace(t *testing.T) {
	t.Parallel()
	in := forkInput()
	saveDueNow(&in)
	ds, st := Decide(in, State{})
	if fb := only(ds, RemedyForkBudget); len(fb) != 1 || fb[0].Action != ActForkSlotTake {
		t.Fatalf("due: %+v, want a take", fb)
	}
	in = at(in, now.Add(time.Second))
	slotMine(&in)
	if ds, st = Decide(in, st); len(only(ds, RemedyForkBudget)) != 0 {
		t.Fatalf("within the grace: %+v, want the slot kept", only(ds, RemedyForkBudget))
	}
	later := at(in, now.Add(3*time.Second))
	if ds, _ := Decide(later, st); len(only(ds, RemedyForkBudget)) != 1 || only(ds, RemedyForkBudget)[0].Action != ActForkSlotRelease {
		t.Fatalf("after the grace: %+v, want a release", only(ds, RemedyForkBudget))
	}
	// The child appears, then ends with the save done.
	child := at(in, now.Add(1200*time.Millisecond))
	childRuns(&child)
	ds, st = Decide(child, st)
	if len(only(ds, RemedyForkBudget)) != 0 {
		t.Fatalf("child with its slot: %+v", only(ds, RemedyForkBudget))
	}
	done := at(in, now.Add(1500*time.Millisecond))
	done.Snapshot.Redis.Info.RDBLastSaveTime = now.Unix()
	done.Snapshot.Redis.Info.RDBChangesSinceLastSave = 0
	if ds, _ := Decide(done, st); len(only(ds, RemedyForkBudget)) != 1 || only(ds, RemedyForkBudget)[0].Action != ActForkSlotRelease {
		t.Fatalf("child ended: %+v, want a release at once", only(ds, RemedyForkBudget))
	}
}

// TestForkBudgetForcedStaysCritical: after max_deferral the critical finding
// stays until a save succeeds.
func TestForkBudgetForcedStaysCritical(t *testing.T) {
	t.Parallel()
	in := forkInput()
	saveDueNow(&in)
	slotTaken(&in)
	saveHeld(6 * time.Minute)(&in)
	_, st := Evaluate(in, State{})
	next := at(forkInput(), now.Add(time.Second))
	saveDueNow(&next)
	slotTaken(&next)
	res, st := Evaluate(next, st)
	if !hasFinding(res.Findings, IDForkDeferred, Critical) {
		t.Fatalf("after the forced give-back: %+v, want fork_deferred critical", res.Findings)
	}
	if fb := only(res.Decisions, RemedyForkBudget); len(fb) != 0 {
		t.Fatalf("after the forced give-back, the slot still taken: %+v, want no new deferral before the save succeeds", fb)
	}
	saved := at(next, now.Add(10*time.Second))
	saved.Snapshot.Redis.Info.RDBLastSaveTime = now.Add(9 * time.Second).Unix()
	if res, _ := Evaluate(saved, st); hasFinding(res.Findings, IDForkDeferred, Critical) {
		t.Fatalf("after a save: %+v, want fork_deferred cleared", res.Findings)
	}
}

func hasFinding(fs []Finding, id string, sev Severity) bool {
	for _, f := range fs {
		if f.ID == id && f.Severity == sev {
			return true
		}
	}
	return false
}

func TestSaveSettingValues(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", `""`, "900 1", "3600 1 300 100 60 10000", " 900  1 "} {
		if err := CheckHeld(RemedyForkBudget, SettingSave, v, ""); err != nil {
			t.Errorf("original %q refused: %v", v, err)
		}
	}
	for _, v := range []string{"900", "a b", "900 -1", "requirepass x"} {
		if err := CheckHeld(RemedyForkBudget, SettingSave, v, ""); err == nil {
			t.Errorf("original %q accepted", v)
		}
	}
	if !SameValue(SettingSave, "3600 1  300 100", "3600 1 300 100") || !SameValue(SettingSave, `""`, "") || SameValue(SettingSave, "", "900 1") {
		t.Error("save values compare wrongly")
	}
}

func TestOtherForkRunning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    monitor.ForkView
		want bool
	}{
		{monitor.ForkView{}, false},
		{monitor.ForkView{Known: true, Slots: 1}, false},
		{monitor.ForkView{Known: true, Slots: 1, Others: []string{"b 1"}}, true},
		{monitor.ForkView{Known: true, Slots: 2, Others: []string{"b 1"}}, false},
		{monitor.ForkView{Known: true, Slots: 1, Mine: true}, false},
	} {
		if got := OtherForkRunning(monitor.Snapshot{Fork: tc.v}); got != tc.want {
			t.Errorf("OtherForkRunning(%+v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

// TestOwnForksWaitForTheSlot: bgsave_retry, rewrite_retry and rewrite_deferral's
// quiet rewrite do not fork while another instance holds the last slot.
func TestOwnForksWaitForTheSlot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		remedy string
		setup  func(*Input)
	}{
		{name: "bgsave retry", remedy: RemedyBgsaveRetry, setup: func(in *Input) {
			misconf(in)
			ConfigOf[*BgsaveRetryConfig](in.Remedies).InitialBackoff = 0
		}},
		{name: "rewrite retry", remedy: RemedyRewriteRetry, setup: func(in *Input) {
			in.Snapshot.Redis.Info.AOFEnabled = true
			in.Snapshot.Redis.Config["appendonly"] = "yes"
			in.Snapshot.Redis.Info.AOFLastBgrewriteStatus = "err"
			in.Snapshot.Redis.Config[SettingRewritePercent] = "0"
			in.Held[SettingRewritePercent] = Held{Setting: SettingRewritePercent, Original: "100", Value: "0", Remedy: RemedyRewriteRetry,
				Reason: IDAOFRewriteStorm, Since: now.Add(-time.Hour)}
			ConfigOf[*RewriteRetryConfig](in.Remedies).InitialBackoff = 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := forkInput()
			in.Remedies = DefaultRemedies()
			tc.setup(&in)
			// Two ticks: a retry may wait for its first backoff step.
			ds, st := Decide(in, State{})
			ds2, _ := Decide(at(in, now.Add(time.Minute)), st)
			forks := 0
			for _, d := range only(append(ds, ds2...), tc.remedy) {
				if d.Action == ActBgsave || d.Action == ActBgrewriteaof {
					forks++
				}
			}
			if forks == 0 {
				t.Fatalf("with the slot free: no %s decision; the case does not reach the fork", tc.remedy)
			}
			slotTaken(&in)
			ds, st = Decide(in, State{})
			ds2, _ = Decide(at(in, now.Add(time.Minute)), st)
			for _, d := range only(append(ds, ds2...), tc.remedy) {
				if d.Action == ActBgsave || d.Action == ActBgrewriteaof {
					t.Errorf("with another instance's child holding the slot: %+v", d)
				}
			}
		})
	}
}

// TestForkBudgetFileValue: a hold records what the config file means for save:
// its line, or with no line the live save points, never "" (the held value).
func TestForkBudgetFileValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		lines map[string]monitor.ConfigFileLine
		want  string
	}{
		{name: "no save line", lines: map[string]monitor.ConfigFileLine{}, want: "3600 1 300 100"},
		{name: "a save line", lines: map[string]monitor.ConfigFileLine{SettingSave: {Value: "900 1", Number: 3}}, want: "900 1"},
	} {
		for _, wontFit := range []bool{false, true} {
			in := forkInput()
			saveDueNow(&in)
			in.Snapshot.Redis.File = monitor.ConfigFileReading{Path: "/etc/redis/redis.conf", Known: true, Lines: tc.lines}
			if wontFit {
				in.Snapshot.Redis.Info.RDBLastCOWSize = 100 * mib
				in.Snapshot.Host.MemAvailable = uint64(110 * mib)
			}
			res, _ := Evaluate(in, State{})
			fb := only(res.Decisions, RemedyForkBudget)
			if len(fb) != 1 || fb[0].FileValue != tc.want {
				t.Errorf("%s (won't fit %v): %+v, want one hold recording file value %q", tc.name, wontFit, fb, tc.want)
			}
		}
	}
}

// TestForkBudgetChildTakePaced: a child that runs while every slot is held asks
// for a slot once a second, not at every fast tick.
func TestForkBudgetChildTakePaced(t *testing.T) {
	t.Parallel()
	in := forkInput()
	childRuns(&in)
	slotTaken(&in)
	takes := 0
	st := State{}
	for i := range 40 { // 2 s of 50 ms ticks
		var ds []Decision
		ds, st = Decide(at(in, now.Add(time.Duration(i)*50*time.Millisecond)), st)
		takes += len(only(ds, RemedyForkBudget))
	}
	if takes != 2 {
		t.Errorf("%d takes over 2 s, want 2", takes)
	}
}

// earlyInputs: save point "60 1000" with 2000 changes 50 s after the last
// save (40 changes/s on average) and 10 in the last second: quiet, 11 s before
// the save comes due, inside its last quarter (15 s). prev is the tick before.
func earlyInputs() (prev, in Input) {
	in = forkInput()
	in.Snapshot.Redis.Config[SettingSave] = "60 1000"
	info := &in.Snapshot.Redis.Info
	info.RDBLastSaveTime = now.Add(-50 * time.Second).Unix()
	info.RDBChangesSinceLastSave = 2000
	prev = at(in, now.Add(-time.Second))
	prev.Snapshot.Redis.Config = maps.Clone(in.Snapshot.Redis.Config)
	prev.Snapshot.Redis.Info.RDBChangesSinceLastSave = 1990
	return prev, in
}

// earlyDecisions runs the tick before, then the tick, and returns
// fork_budget's decisions of the tick.
func earlyDecisions(prev, in Input) []Decision {
	_, st := Decide(prev, State{})
	res, _ := Evaluate(in, st)
	return only(res.Decisions, RemedyForkBudget)
}

// TestForkBudgetEarlySave: a save that comes due soon starts now when the
// writes are quiet, a slot is free and the room fits; never in a burst, before
// its lead, without its changes, while a failure is predicted or the last save
// failed, or when turned off.
func TestForkBudgetEarlySave(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(prev, in *Input)
		want  bool
	}{
		{name: "quiet, within the lead", want: true},
		{name: "a burst of writes", setup: func(prev, _ *Input) { prev.Snapshot.Redis.Info.RDBChangesSinceLastSave = 1900 }},
		{name: "before the lead", setup: func(prev, in *Input) {
			in.Snapshot.Redis.Info.RDBLastSaveTime = now.Add(-40 * time.Second).Unix()
			prev.Snapshot.Redis.Info.RDBLastSaveTime = in.Snapshot.Redis.Info.RDBLastSaveTime
		}},
		{name: "the save point's changes not reached", setup: func(prev, in *Input) {
			in.Snapshot.Redis.Info.RDBChangesSinceLastSave, prev.Snapshot.Redis.Info.RDBChangesSinceLastSave = 900, 899
		}},
		{name: "a save since the previous tick", setup: func(prev, _ *Input) { prev.Snapshot.Redis.Info.RDBLastSaveTime-- }},
		{name: "the previous tick could not read Redis", setup: func(prev, _ *Input) { prev.Snapshot.Redis.Err = errors.New("down") }},
		{name: "the slot is taken", setup: func(_, in *Input) { slotTaken(in) }},
		{name: "another save waits its turn", setup: func(_, in *Input) { waiterSince(time.Minute)(in) }},
		{name: "the copy-on-write does not fit", setup: func(_, in *Input) {
			in.Snapshot.Redis.Info.RDBLastCOWSize = 100 * mib
			in.Snapshot.Host.MemAvailable = uint64(110 * mib)
		}},
		{name: "a fork failure predicted", setup: func(_, in *Input) { nprocAt(in, 64, 64) }},
		{name: "the last save failed", setup: func(_, in *Input) { in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "err" }},
		{name: "a rewrite scheduled", setup: func(_, in *Input) { in.Snapshot.Redis.Info.AOFRewriteScheduled = true }},
		{name: "early_save off", setup: func(_, in *Input) { ConfigOf[*ForkBudgetConfig](in.Remedies).EarlySave = false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prev, in := earlyInputs()
			if tc.setup != nil {
				tc.setup(&prev, &in)
			}
			fb := earlyDecisions(prev, in)
			got := len(fb) == 1 && fb[0].Action == ActBgsave && fb[0].Reason == ReasonSaveEarly
			if got != tc.want || (!tc.want && len(fb) > 0) {
				t.Errorf("decisions %+v, want an early save: %v", fb, tc.want)
			}
			if got {
				contains(t, "detail", fb[0].Detail, `save point "60 1000" comes due in 11s`, "10 changes/s against 40/s")
			}
		})
	}
	// Once started, not again within earlyEvery (a BGSAVE that fails at fork).
	prev, in := earlyInputs()
	_, st := Decide(prev, State{})
	ds, st := Decide(in, st)
	if len(only(ds, RemedyForkBudget)) != 1 {
		t.Fatalf("first: %+v", ds)
	}
	in = at(in, now.Add(2*time.Second))
	if ds, _ := Decide(in, st); len(only(ds, RemedyForkBudget)) != 0 {
		t.Errorf("again 2 s later: %+v, want nothing", only(ds, RemedyForkBudget))
	}
}

// TestForkBudgetBesideStopWrites: a save that failed (MISCONF, stop_writes
// holds the toggle) and comes due again while another instance holds the slot.
// fork_budget holds save "" (Redis then accepts writes whatever the toggle),
// and stop_writes keeps its toggle all the same: the last save still failed,
// and giving it back would reject writes the moment save returns. Once the
// slot frees, save is given back with the slot held and the toggle stays
// until a save succeeds; then it is given back.
func TestForkBudgetBesideStopWrites(t *testing.T) {
	t.Parallel()
	toggle := Held{Setting: SettingStopWrites, Original: "yes", Value: "no", Remedy: RemedyStopWrites, Reason: IDMisconfRDB, Since: now.Add(-time.Minute)}
	actions := func(in Input) map[string][]Action {
		ds, _ := Decide(in, State{})
		out := map[string][]Action{}
		for _, d := range ds {
			if d.Remedy == RemedyForkBudget || d.Remedy == RemedyStopWrites {
				out[d.Remedy] = append(out[d.Remedy], d.Action)
			}
		}
		return out
	}
	in := forkInput()
	saveDueNow(&in)
	misconf(&in)
	in.Snapshot.Redis.Config[SettingStopWrites] = "no"
	in.Held[SettingStopWrites] = toggle
	slotTaken(&in)
	if got := actions(in); len(got[RemedyStopWrites]) != 0 || !slices.Equal(got[RemedyForkBudget], []Action{ActForkSlotTake}) {
		t.Errorf("due, slot taken: %v; want fork_budget's take-or-hold and stop_writes keeping its toggle", got)
	}
	saveHeld(time.Minute)(&in)
	if got := actions(in); len(got[RemedyStopWrites]) != 0 || len(got[RemedyForkBudget]) != 0 {
		t.Errorf("save held, slot taken: %v; want both to keep what they hold", got)
	}
	in.Snapshot.Fork.Others = nil
	if got := actions(in); len(got[RemedyStopWrites]) != 0 || !slices.Equal(got[RemedyForkBudget], []Action{ActForkResume}) {
		t.Errorf("save held, slot free: %v; want save resumed and the toggle kept", got)
	}
	delete(in.Held, SettingSave)
	in.Snapshot.Redis.Config[SettingSave] = "3600 1 300 100"
	in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "ok"
	in.Snapshot.Redis.Info.RDBLastSaveTime = now.Unix()
	in.Snapshot.Redis.Info.RDBChangesSinceLastSave = 0
	if got := actions(in); !slices.Equal(got[RemedyStopWrites], []Action{ActUndo}) {
		t.Errorf("the save succeeded: %v; want the toggle given back", got)
	}
}
