package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// holdStopWritesFor holds the toggle for a predicted failure.
func holdStopWritesFor(in *Input, reason string) {
	holdStopWrites(in)
	h := in.Held[SettingStopWrites]
	h.Reason = reason
	in.Held[SettingStopWrites] = h
}

func holdStopWrites(in *Input) {
	in.Held = map[string]Held{SettingStopWrites: {Setting: SettingStopWrites, Original: "yes", Value: "no",
		Remedy: RemedyStopWrites, Since: now.Add(-10 * time.Minute)}}
}

func TestDecideStopWrites(t *testing.T) {
	t.Parallel()
	set := func(reason string) []Decision {
		// Only a failed save rejects writes now; a prediction has time for the fsync.
		return []Decision{{Remedy: RemedyStopWrites, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: reason, Urgent: reason == IDMisconfRDB}}
	}
	suppressed := func(reason, limit string) []Decision {
		return []Decision{{Remedy: RemedyStopWrites, Action: ActSuppressed, Setting: SettingStopWrites, Value: "no", Reason: reason, Limit: limit, Urgent: reason == IDMisconfRDB}}
	}
	undo := []Decision{{Remedy: RemedyStopWrites, Action: ActUndo, Setting: SettingStopWrites, Value: "yes", Reason: IDMisconfRDB}}
	warnHeld := []Decision{{Remedy: RemedyStopWrites, Action: ActWarn, Setting: SettingStopWrites, Reason: IDBgsaveFailed}}
	wontFit := func(in *Input) { in.Snapshot.Host.DataDir.Free = uint64(10 * mib) }
	runDecideCases(t, "", []decideCase{
		{name: "healthy"},
		{name: "misconf", setup: func(in *Input, _ *State) { misconf(in) }, want: set(IDMisconfRDB)},
		{name: "misconf without save points", setup: func(in *Input, _ *State) {
			misconf(in)
			in.Snapshot.Redis.Config["save"] = ""
		}},
		{name: "misconf while fork_budget holds save empty", setup: func(in *Input, _ *State) {
			// Redis rejects nothing while save is "", but every write the moment
			// fork_budget gives save back: lift it now (the soak, seed 1234).
			misconf(in)
			in.Snapshot.Redis.Config["save"] = ""
			in.Held = map[string]Held{SettingSave: {Setting: SettingSave, Original: "900 1", Value: "",
				Remedy: RemedyForkBudget, Reason: IDForkDeferred, Since: now.Add(-time.Second)}}
		}, want: append(set(IDMisconfRDB), Decision{Remedy: RemedyForkBudget, Action: ActUndo, Setting: SettingSave,
			Value: "900 1", Reason: IDForkDeferred})},
		{name: "misconf with stop-writes off", setup: func(in *Input, _ *State) {
			misconf(in)
			in.Snapshot.Redis.Config["stop-writes-on-bgsave-error"] = "no"
		}},
		{name: "stop-writes unknown reads as yes", setup: func(in *Input, _ *State) {
			misconf(in)
			delete(in.Snapshot.Redis.Config, "stop-writes-on-bgsave-error")
		}, want: set(IDMisconfRDB)},
		{name: "require aof with aof off", setup: func(in *Input, _ *State) {
			misconf(in)
			ConfigOf[*StopWritesConfig](in.Remedies).RequireAOF = true
			in.Snapshot.Redis.Info.AOFEnabled = false
		}},
		{name: "require aof with aof failing", setup: func(in *Input, _ *State) {
			misconf(in)
			ConfigOf[*StopWritesConfig](in.Remedies).RequireAOF = true
			in.Snapshot.Redis.Info.AOFLastWriteStatus = "err"
		}},
		{name: "require aof with aof healthy", setup: func(in *Input, _ *State) {
			misconf(in)
			ConfigOf[*StopWritesConfig](in.Remedies).RequireAOF = true
		}, want: set(IDMisconfRDB)},
		{name: "predictive", setup: func(in *Input, _ *State) { wontFit(in) }, want: set(IDSnapshotWontFit)},
		{name: "predictive off", setup: func(in *Input, _ *State) {
			wontFit(in)
			ConfigOf[*StopWritesConfig](in.Remedies).Predictive = false
		}},
		{name: "predicted: data dir not writable", setup: func(in *Input, _ *State) {
			in.Snapshot.Host.DataDir.Writable = monitor.No
		}, want: set(IDDatadirNotWritable)},
		{name: "predicted: nproc reached", setup: func(in *Input, _ *State) { nprocAt(in, 64, 64) }, want: set(IDForkNprocExhausted)},
		{name: "predicted: nproc reached, no save points", setup: func(in *Input, _ *State) {
			nprocAt(in, 64, 64)
			in.Snapshot.Redis.Config["save"] = ""
		}},
		{name: "predicted: commit limit reached", setup: func(in *Input, _ *State) {
			in.Snapshot.Host.Overcommit = 2
			in.Snapshot.Host.CommitLimit, in.Snapshot.Host.CommittedAS, in.Snapshot.Host.ProcCommit = 10*gib, 10*gib-mib, 100*mib
		}, want: set(IDForkCommitExhausted)},
		{name: "held for nproc, one task to spare: kept (hysteresis)", setup: func(in *Input, _ *State) {
			holdStopWritesFor(in, IDForkNprocExhausted)
			nprocAt(in, 64, 62)
		}},
		{name: "held for nproc, room again: waits the dwell", setup: func(in *Input, _ *State) {
			holdStopWritesFor(in, IDForkNprocExhausted)
			nprocAt(in, 64, 10)
		}},
		{name: "held for nproc, room for the dwell: given back", setup: func(in *Input, st *State) {
			holdStopWritesFor(in, IDForkNprocExhausted)
			nprocAt(in, 64, 10)
			st.remedies = map[string]any{RemedyStopWrites: stopWritesState{RoomySince: now.Add(-time.Hour)}}
		}, want: undo},
		{name: "held for a non-writable dir, still not writable: kept", setup: func(in *Input, st *State) {
			holdStopWritesFor(in, IDDatadirNotWritable)
			in.Snapshot.Host.DataDir.Writable = monitor.No
			st.remedies = map[string]any{RemedyStopWrites: stopWritesState{RoomySince: now.Add(-time.Hour)}}
		}},
		{name: "predictive with data dir unknown", setup: func(in *Input, _ *State) {
			wontFit(in)
			in.Snapshot.Host.DataDir.Known = false
		}},
		{name: "held, save ok and next fits", setup: func(in *Input, _ *State) { holdStopWrites(in) }, want: undo},
		{name: "held, save ok but next will not fit", setup: func(in *Input, _ *State) {
			holdStopWrites(in)
			wontFit(in)
		}},
		{name: "held, still failing, first time", setup: func(in *Input, _ *State) {
			holdStopWrites(in)
			misconf(in)
		}},
		{name: "held, still failing, warned recently", setup: func(in *Input, st *State) {
			holdStopWrites(in)
			misconf(in)
			st.remedies = map[string]any{RemedyStopWrites: stopWritesState{LastHeldWarn: now.Add(-time.Minute)}}
		}},
		{name: "held, still failing, warn due", setup: func(in *Input, st *State) {
			holdStopWrites(in)
			misconf(in)
			st.remedies = map[string]any{RemedyStopWrites: stopWritesState{LastHeldWarn: now.Add(-ConfigOf[*StopWritesConfig](in.Remedies).WarnEvery)}}
		}, want: warnHeld},
		{name: "held, still failing, warnings off", setup: func(in *Input, st *State) {
			holdStopWrites(in)
			misconf(in)
			ConfigOf[*StopWritesConfig](in.Remedies).WarnEvery = 0
			st.remedies = map[string]any{RemedyStopWrites: stopWritesState{LastHeldWarn: now.Add(-time.Hour)}}
		}},
		{name: "held while stopping is kept", setup: func(in *Input, st *State) {
			holdStopWrites(in)
			misconf(in)
			in.Stopping = true
			st.remedies = map[string]any{RemedyStopWrites: stopWritesState{LastHeldWarn: now.Add(-time.Hour)}}
		}},
		{name: "stopping starts nothing", setup: func(in *Input, _ *State) {
			misconf(in)
			in.Stopping = true
		}},
		{name: "disabled", setup: func(in *Input, _ *State) {
			misconf(in)
			ConfigOf[*StopWritesConfig](in.Remedies).Enabled = false
		}},
		// Lifting an active MISCONF is never held back by the cap or the cooldown.
		{name: "hourly cap reached", setup: func(in *Input, st *State) {
			misconf(in)
			st.Shared.Actions = map[string][]time.Time{RemedyStopWrites: recentActions(ConfigOf[*StopWritesConfig](in.Remedies).MaxPerHour, now.Add(-30*time.Minute))}
		}, want: set(IDMisconfRDB)},
		{name: "predictive at the hourly cap is suppressed, once", setup: func(in *Input, st *State) {
			wontFit(in)
			st.Shared.Actions = map[string][]time.Time{RemedyStopWrites: recentActions(ConfigOf[*StopWritesConfig](in.Remedies).MaxPerHour, now.Add(-30*time.Minute))}
		}, want: suppressed(IDSnapshotWontFit, LimitMaxPerHour)},
		{name: "predictive at the hourly cap, already reported", setup: func(in *Input, st *State) {
			wontFit(in)
			st.Shared.Actions = map[string][]time.Time{RemedyStopWrites: recentActions(ConfigOf[*StopWritesConfig](in.Remedies).MaxPerHour, now.Add(-30*time.Minute))}
			st.Shared.Suppressed = map[string]string{RemedyStopWrites: LimitMaxPerHour}
		}},
		{name: "held, save ok, fits but within the margin", setup: func(in *Input, _ *State) {
			holdStopWrites(in)
			in.Snapshot.Host.DataDir.Free = uint64(ExpectedSnapshot(in.Snapshot) + mib/2)
		}},
		{name: "predictive hold, roomy, dwell not passed", setup: func(in *Input, st *State) {
			holdStopWrites(in)
			h := in.Held[SettingStopWrites]
			h.Reason = IDSnapshotWontFit
			in.Held[SettingStopWrites] = h
			st.remedies = map[string]any{RemedyStopWrites: stopWritesState{RoomySince: now.Add(-10 * time.Second)}}
		}},
		{name: "predictive hold, roomy for the dwell", setup: func(in *Input, st *State) {
			holdStopWrites(in)
			h := in.Held[SettingStopWrites]
			h.Reason = IDSnapshotWontFit
			in.Held[SettingStopWrites] = h
			st.remedies = map[string]any{RemedyStopWrites: stopWritesState{RoomySince: now.Add(-ConfigOf[*StopWritesConfig](in.Remedies).PredictiveDwell)}}
		}, want: undo},
		{name: "actions older than an hour do not count", setup: func(in *Input, st *State) {
			misconf(in)
			st.Shared.Actions = map[string][]time.Time{RemedyStopWrites: recentActions(ConfigOf[*StopWritesConfig](in.Remedies).MaxPerHour, now.Add(-2*time.Hour))}
		}, want: set(IDMisconfRDB)},
		{name: "cooldown", setup: func(in *Input, st *State) {
			misconf(in)
			ConfigOf[*StopWritesConfig](in.Remedies).Cooldown = time.Minute
			st.Shared.Actions = map[string][]time.Time{RemedyStopWrites: {now.Add(-30 * time.Second)}}
		}, want: set(IDMisconfRDB)},
		{name: "predictive in the cooldown", setup: func(in *Input, st *State) {
			wontFit(in)
			ConfigOf[*StopWritesConfig](in.Remedies).Cooldown = time.Minute
			st.Shared.Actions = map[string][]time.Time{RemedyStopWrites: {now.Add(-30 * time.Second)}}
		}},
		{name: "backed off after a failure", setup: func(in *Input, st *State) {
			misconf(in)
			st.Shared.FailedUntil = map[string]time.Time{RemedyStopWrites: now.Add(time.Second)}
		}, want: suppressed(IDMisconfRDB, LimitBackoff)},
		{name: "redis unreadable", setup: func(in *Input, _ *State) {
			misconf(in)
			in.Snapshot.Redis.Err = errors.New("dial tcp: connection refused")
		}},
		{name: "config unknown", setup: func(in *Input, _ *State) {
			misconf(in)
			in.Snapshot.Redis.Config = nil
		}},
		{name: "held but config unknown", setup: func(in *Input, _ *State) {
			holdStopWrites(in)
			in.Snapshot.Redis.Config = monitor.RedisConfig{}
		}},
	})
}

func TestDecideStopWritesWarnsEveryWarnEvery(t *testing.T) {
	t.Parallel()
	in := decideInput()
	holdStopWrites(&in)
	misconf(&in)
	every := ConfigOf[*StopWritesConfig](in.Remedies).WarnEvery
	var st State
	var ds []Decision
	for _, tc := range []struct {
		at   time.Duration
		warn bool
	}{{0, false}, {every / 2, false}, {every, true}, {every + time.Second, false}, {2 * every, true}} {
		ds, st = Decide(at(in, now.Add(tc.at)), st)
		got := only(ds, RemedyStopWrites)
		if tc.warn != (len(got) == 1 && got[0].Action == ActWarn) || len(got) > 1 {
			t.Errorf("at +%s: got %+v, want warning %v", tc.at, got, tc.warn)
		}
		if tc.warn && !strings.Contains(got[0].Detail, "12 changes") {
			t.Errorf("warning %q does not say how many changes are not on disk", got[0].Detail)
		}
	}
	// The save succeeds: the toggle is undone and the warning state reset.
	in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "ok"
	ds, st = Decide(at(in, now.Add(3*every)), st)
	if diff := cmp.Diff([]Decision{{Remedy: RemedyStopWrites, Action: ActUndo, Setting: SettingStopWrites, Value: "yes", Reason: IDMisconfRDB}},
		only(ds, RemedyStopWrites), decisionOpts...); diff != "" {
		t.Errorf("after the save succeeded (-want +got):\n%s", diff)
	}
	if !swState(st).LastHeldWarn.IsZero() {
		t.Errorf("LastHeldWarn = %s after undo, want zero", swState(st).LastHeldWarn)
	}
}

// swState is stop_writes' own state, as the tests read it.
func swState(st State) stopWritesState {
	s, _ := st.remedies[RemedyStopWrites].(stopWritesState)
	return s
}

// TestRateLimitsNeverKeepMisconf: a save failing 30 s of every minute for an hour
// (60 episodes, twice the hourly cap) is lifted at the first tick of every
// episode, and the undos do not count against the cap.
func TestRateLimitsNeverKeepMisconf(t *testing.T) {
	t.Parallel()
	in := decideInput()
	ConfigOf[*BgsaveRetryConfig](in.Remedies).Enabled = false
	st := State{}
	held := false
	for sec := 0; sec < 3600; sec++ {
		tick := at(in, now.Add(time.Duration(sec)*time.Second))
		failing := sec%60 < 30
		if failing {
			misconf(&tick)
		}
		tick.Held = map[string]Held{}
		if held {
			tick.Held[SettingStopWrites] = Held{Setting: SettingStopWrites, Original: "yes", Value: "no", Remedy: RemedyStopWrites, Reason: IDMisconfRDB, Since: tick.Now}
		}
		var ds []Decision
		ds, st = Decide(tick, st)
		ds = only(ds, RemedyStopWrites)
		if failing && !held && (len(ds) != 1 || ds[0].Action != ActSet) {
			t.Fatalf("second %d: MISCONF active and not held, decided %+v", sec, ds)
		}
		var outs []Outcome
		for _, d := range ds {
			switch d.Action {
			case ActSet:
				held = true
			case ActUndo:
				held = false
			}
			outs = append(outs, Outcome{Decision: d, OK: true})
		}
		st = Observe(st, tick.Now, outs)
	}
	if n := len(st.Shared.Actions[RemedyStopWrites]); n != 60 {
		t.Errorf("%d actions counted in the last hour, want the 60 sets (no undos)", n)
	}
}

// TestPredictiveToggleDoesNotFlap: free space swinging 1 MiB either side of the
// snapshot's size every 5 s toggles once and holds; it is given back only after
// the disk has had room to spare for the dwell.
func TestPredictiveToggleDoesNotFlap(t *testing.T) {
	t.Parallel()
	in := decideInput()
	ConfigOf[*BgsaveRetryConfig](in.Remedies).Enabled = false
	exp := ExpectedSnapshot(in.Snapshot)
	st := State{}
	var held *Held
	sets, undos := 0, 0
	step := func(sec int, free int64) {
		tick := at(in, now.Add(time.Duration(sec)*time.Second))
		tick.Snapshot.Host.DataDir.Free = uint64(free)
		tick.Held = map[string]Held{}
		if held != nil {
			tick.Held[SettingStopWrites] = *held
		}
		var ds []Decision
		ds, st = Decide(tick, st)
		var outs []Outcome
		for _, d := range only(ds, RemedyStopWrites) {
			switch d.Action {
			case ActSet:
				sets++
				held = &Held{Setting: SettingStopWrites, Original: "yes", Value: "no", Remedy: RemedyStopWrites, Reason: d.Reason, Since: tick.Now}
			case ActUndo:
				undos++
				held = nil
			}
			outs = append(outs, Outcome{Decision: d, OK: true})
		}
		st = Observe(st, tick.Now, outs)
	}
	sec := 0
	for ; sec < 150; sec++ {
		free := exp - mib
		if (sec/5)%2 == 1 {
			free = exp + mib
		}
		step(sec, free)
	}
	if sets != 1 || undos != 0 {
		t.Fatalf("swinging free space: %d sets, %d undos; want 1 set and the toggle held", sets, undos)
	}
	dwell := ConfigOf[*StopWritesConfig](in.Remedies).PredictiveDwell
	roomy := exp + predictiveMargin(exp) + mib
	for end := sec + int(dwell/time.Second); sec < end; sec++ {
		step(sec, roomy)
	}
	if undos != 0 {
		t.Fatalf("given back before the dwell passed")
	}
	step(sec, roomy)
	if undos != 1 {
		t.Errorf("not given back after %s with room to spare", dwell)
	}
}

// TestStopWritesYieldLastsUntilASaveAfterIt: the operator sets the toggle back
// while the guardian still holds it after a save succeeded (its hysteresis). A
// new failure seconds later is left alone: the yield lasts until a save
// succeeds after it. On the code before, the yield ended at the first tick
// with the last save ok, and the new failure was toggled again (the soak, seed
// 20261207: 7 s after the operator's revert).
func TestStopWritesYieldLastsUntilASaveAfterIt(t *testing.T) {
	t.Parallel()
	toggles := func(ds []Decision) int {
		n := 0
		for _, d := range ds {
			if d.Remedy == RemedyStopWrites && d.Action == ActSet {
				n++
			}
		}
		return n
	}
	in := decideInput()
	in.Snapshot.Redis.Info.RDBLastSaveTime = now.Add(-4 * time.Second).Unix()
	in.Yielded = []Yield{{Remedy: RemedyStopWrites, Setting: SettingStopWrites}}
	_, st := Decide(in, State{})

	in = at(decideInput(), now.Add(7*time.Second))
	in.Snapshot.Redis.Info.RDBLastSaveTime = now.Add(-4 * time.Second).Unix()
	misconf(&in)
	ds, st := Decide(in, st)
	if n := toggles(ds); n != 0 {
		t.Fatalf("a new failure 7 s after the yield, no save since: %d toggles, want 0 (the operator's choice stands)", n)
	}

	in = at(decideInput(), now.Add(10*time.Second))
	in.Snapshot.Redis.Info.RDBLastSaveTime = now.Add(10 * time.Second).Unix()
	_, st = Decide(in, st)
	in = at(decideInput(), now.Add(20*time.Second))
	in.Snapshot.Redis.Info.RDBLastSaveTime = now.Add(10 * time.Second).Unix()
	misconf(&in)
	if ds, _ := Decide(in, st); toggles(ds) != 1 {
		t.Errorf("a failure after a save succeeded after the yield: %v, want the toggle (a new episode)", ds)
	}
}
