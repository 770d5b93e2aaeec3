package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// decisionOpts compare decisions without their readable Detail, which is checked
// separately where it matters.
// stateOpts compare States with the remedies' own (unexported) states.
var stateOpts = cmp.AllowUnexported(State{}, bgsaveRetryState{}, rewriteDeferralState{}, stopWritesState{})

var decisionOpts = []cmp.Option{cmpopts.IgnoreFields(Decision{}, "Detail"), cmpopts.EquateEmpty()}

// decideInput is a healthy instance at now with the default remedies and no jitter.
func decideInput() Input {
	s := healthy()
	return Input{
		Snapshot:   s,
		Held:       map[string]Held{},
		Remedies:   DefaultRemedies(),
		Thresholds: DefaultThresholds(),
		Now:        now,
	}
}

// at moves an input to another moment, snapshot included.
func at(in Input, t time.Time) Input {
	in.Now = t
	in.Snapshot.Time = t
	return in
}

// only keeps the decisions of one remedy.
func only(ds []Decision, remedy string) []Decision {
	var out []Decision
	for _, d := range ds {
		if d.Remedy == remedy {
			out = append(out, d)
		}
	}
	return out
}

func misconf(in *Input) { in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "err" }

// holdStopWritesFor holds the toggle for a predicted failure.
func holdStopWritesFor(in *Input, reason string) {
	holdStopWrites(in)
	h := in.Held[SettingStopWrites]
	h.Reason = reason
	in.Held[SettingStopWrites] = h
}

// nprocAt puts Redis's uid at tasks of a soft RLIMIT_NPROC of limit.
func nprocAt(in *Input, limit, tasks int64) {
	in.Snapshot.Host.NprocLimit, in.Snapshot.Host.NprocUID, in.Snapshot.Host.UIDTasks = limit, 102, tasks
}

func holdStopWrites(in *Input) {
	in.Held = map[string]Held{SettingStopWrites: {Setting: SettingStopWrites, Original: "yes", Value: "no",
		Remedy: RemedyStopWrites, Since: now.Add(-10 * time.Minute)}}
}

func recentActions(n int, t time.Time) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = t
	}
	return ts
}

type decideCase struct {
	name  string
	setup func(in *Input, st *State)
	want  []Decision
}

func runDecideCases(t *testing.T, remedy string, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			st := State{}
			if tc.setup != nil {
				tc.setup(&in, &st)
			}
			got, _ := Decide(in, st)
			if remedy != "" {
				got = only(got, remedy)
			}
			if diff := cmp.Diff(tc.want, got, decisionOpts...); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
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

// bgsaveInput is a failing save with stop_writes off, so only the retry acts.
func bgsaveInput() Input {
	in := decideInput()
	misconf(&in)
	ConfigOf[*StopWritesConfig](in.Remedies).Enabled = false
	return in
}

var bgsave = Decision{Remedy: RemedyBgsaveRetry, Action: ActBgsave, Reason: IDBgsaveFailed}

func TestDecideBgsaveBackoff(t *testing.T) {
	t.Parallel()
	in := bgsaveInput()
	r := ConfigOf[*BgsaveRetryConfig](in.Remedies)
	ds, st := Decide(in, State{})
	if got := only(ds, RemedyBgsaveRetry); len(got) != 0 {
		t.Fatalf("first tick of a failure: %+v, want only scheduling", got)
	}
	if want := now.Add(r.InitialBackoff); !bgState(st).NextRetry.Equal(want) {
		t.Errorf("NextRetry = %s, want %s", bgState(st).NextRetry, want)
	}
	last := now
	wantGap := r.InitialBackoff
	for i := range 9 {
		next := last.Add(wantGap)
		ds, st = Decide(at(in, next.Add(-time.Second)), st)
		if got := only(ds, RemedyBgsaveRetry); len(got) != 0 {
			t.Fatalf("retry %d: a second before %s: %+v, want nothing", i, next, got)
		}
		ds, st = Decide(at(in, next), st)
		got := only(ds, RemedyBgsaveRetry)
		if diff := cmp.Diff([]Decision{bgsave}, got, decisionOpts...); diff != "" {
			t.Fatalf("retry %d at +%s (-want +got):\n%s", i, next.Sub(now), diff)
		}
		st = Observe(st, next, []Outcome{{Decision: got[0], OK: true}})
		if bgState(st).RetryAttempt != i+1 {
			t.Errorf("retry %d: RetryAttempt = %d, want %d", i, bgState(st).RetryAttempt, i+1)
		}
		last = next
		wantGap = min(wantGap*2, r.MaxBackoff)
	}
	if wantGap != r.MaxBackoff {
		t.Errorf("the backoff never reached MaxBackoff: %s", wantGap)
	}

	// Any successful save resets the retries.
	in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "ok"
	_, st = Decide(at(in, last.Add(time.Second)), st)
	if !bgState(st).SaveFailedAt.IsZero() || bgState(st).RetryAttempt != 0 || !bgState(st).NextRetry.IsZero() {
		t.Errorf("after status ok: SaveFailedAt %s, RetryAttempt %d, NextRetry %s; want all zero", bgState(st).SaveFailedAt, bgState(st).RetryAttempt, bgState(st).NextRetry)
	}
}

func TestDecideBgsave(t *testing.T) {
	t.Parallel()
	later := now.Add(ConfigOf[*BgsaveRetryConfig](DefaultRemedies()).InitialBackoff)
	type tick func(in *Input)
	for _, tc := range []struct {
		name string
		// first is applied at now, second one tick later at second.
		first, second tick
		secondAt      time.Time
		want          []Decision
	}{
		{name: "due", secondAt: later, want: []Decision{bgsave}},
		{name: "not yet due", secondAt: later.Add(-time.Millisecond)},
		{name: "rdb child running", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.RDBBgsaveInProgress = true }},
		{name: "loading", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.Loading = true }},
		{name: "aof rewrite running", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.AOFRewriteInProgress = true },
			want: []Decision{{Remedy: RemedyBgsaveRetry, Action: ActBgsave, Reason: IDBgsaveFailed, Schedule: true}}},
		{name: "module fork running", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.ModuleForkInProgress = true },
			want: []Decision{{Remedy: RemedyBgsaveRetry, Action: ActBgsave, Reason: IDBgsaveFailed, Schedule: true}}},
		{name: "data dir writable again", secondAt: now.Add(time.Second),
			first: func(in *Input) { in.Snapshot.Host.DataDir.Writable = monitor.No }, want: []Decision{bgsave}},
		{name: "data dir still not writable", secondAt: now.Add(time.Second),
			first:  func(in *Input) { in.Snapshot.Host.DataDir.Writable = monitor.No },
			second: func(in *Input) { in.Snapshot.Host.DataDir.Writable = monitor.No }},
		{name: "room again", secondAt: now.Add(time.Second),
			first: func(in *Input) { in.Snapshot.Host.DataDir.Free = uint64(10 * mib) }, want: []Decision{bgsave}},
		{name: "snapshot will not fit", secondAt: later.Add(time.Hour),
			first:  func(in *Input) { in.Snapshot.Host.DataDir.Free = uint64(10 * mib) },
			second: func(in *Input) { in.Snapshot.Host.DataDir.Free = uint64(20 * mib) }},
		{name: "disabled", secondAt: later, second: func(in *Input) { ConfigOf[*BgsaveRetryConfig](in.Remedies).Enabled = false }},
		{name: "status ok", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "ok" }},
		{name: "stopping", secondAt: later, second: func(in *Input) { in.Stopping = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := bgsaveInput()
			if tc.first != nil {
				tc.first(&in)
			}
			ds, st := Decide(in, State{})
			if got := only(ds, RemedyBgsaveRetry); len(got) != 0 {
				t.Fatalf("first tick: %+v, want nothing", got)
			}
			in = at(bgsaveInput(), tc.secondAt)
			if tc.second != nil {
				tc.second(&in)
			}
			ds, _ = Decide(in, st)
			if diff := cmp.Diff(tc.want, only(ds, RemedyBgsaveRetry), decisionOpts...); diff != "" {
				t.Errorf("second tick (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideBgsaveCauseClearedDetail(t *testing.T) {
	t.Parallel()
	in := bgsaveInput()
	in.Snapshot.Host.DataDir.Writable = monitor.No
	_, st := Decide(in, State{})
	ds, _ := Decide(at(bgsaveInput(), now.Add(time.Second)), st)
	got := only(ds, RemedyBgsaveRetry)
	if len(got) != 1 || !strings.Contains(got[0].Detail, "writable again") {
		t.Errorf("got %+v, want one BGSAVE naming the cleared cause", got)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	const initial, maxDelay = 5 * time.Second, 5 * time.Minute
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 300 * time.Second, 300 * time.Second, 300 * time.Second}
	for n, w := range want {
		if got := Backoff(n, initial, maxDelay, nil); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, w)
		}
	}
	if got := Backoff(1000, initial, maxDelay, nil); got != maxDelay {
		t.Errorf("Backoff(1000) = %s, want %s", got, maxDelay)
	}
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{{0, 8 * time.Second}, {0.5, 10 * time.Second}} {
		if got := Backoff(1, initial, maxDelay, func() float64 { return tc.r }); got != tc.want {
			t.Errorf("Backoff(1) with r=%v = %s, want %s", tc.r, got, tc.want)
		}
	}
	for n := range 10 {
		base := Backoff(n, initial, maxDelay, nil)
		lo, hi := time.Duration(0.8*float64(base)), time.Duration(1.2*float64(base))
		for range 200 {
			if got := Backoff(n, initial, maxDelay, DefaultRand); got < lo || got >= hi {
				t.Fatalf("Backoff(%d) with jitter = %s, want in [%s, %s)", n, got, lo, hi)
			}
		}
	}
}

// timed is a decision and when it came, relative to now.
type timed struct {
	at time.Duration
	d  Decision
}

// feedLoad feeds one snapshot a second with total_commands_processed growing at
// rate, from *cmds at start, and returns every decision of rewrite_deferral with the
// time it came at, each observed as successful.

// Successful sets and undos update base.Held the way the executor's ledger would.
func feedLoad(base *Input, st State, start time.Time, secs int, cmds *int64, rate int64) ([]timed, State) {
	var out []timed
	for i := range secs {
		t := start.Add(time.Duration(i) * time.Second)
		in := at(*base, t)
		in.Snapshot.Redis.Info.TotalCommandsProcessed = *cmds
		var ds []Decision
		ds, st = Decide(in, st)
		for _, d := range only(ds, RemedyRewriteDeferral) {
			out = append(out, timed{t.Sub(now), d})
			st = Observe(st, t, []Outcome{{Decision: d, OK: true}})
			switch d.Action {
			case ActSet:
				held := map[string]Held{}
				for k, v := range base.Held {
					held[k] = v
				}
				held[d.Setting] = Held{Setting: d.Setting, Original: "100", Value: d.Value, Remedy: d.Remedy, Since: t}
				base.Held = held
			case ActUndo:
				held := map[string]Held{}
				for k, v := range base.Held {
					if k != d.Setting {
						held[k] = v
					}
				}
				base.Held = held
			}
		}
		*cmds += rate
	}
	return out, st
}

func TestDecideRewriteDeferral(t *testing.T) {
	t.Parallel()
	in := decideInput()
	r := ConfigOf[*RewriteDeferralConfig](in.Remedies)
	cmds := int64(1e6)

	// High load: after half a window of samples the rewrites are deferred, once.
	got, st := feedLoad(&in, State{}, now, 20, &cmds, 20000)
	want := []timed{{r.Window / 2, Decision{Remedy: RemedyRewriteDeferral, Action: ActSet, Setting: SettingRewritePercent, Value: "0", Reason: IDAOFGrowthHigh}}}
	if diff := cmp.Diff(want, got, append(decisionOpts, cmp.AllowUnexported(timed{}))...); diff != "" {
		t.Fatalf("under load (-want +got):\n%s", diff)
	}
	if len(rwState(st).Samples) == 0 || now.Add(19*time.Second).Sub(rwState(st).Samples[0].T) > r.Window {
		t.Errorf("samples span more than the window: %+v", rwState(st).Samples)
	}

	// Held: the load stays high, nothing happens; then it falls and stays low for
	// Dwell, and the deferral is undone.
	if _, ok := in.Held[SettingRewritePercent]; !ok {
		t.Fatal("the deferral is not held")
	}
	got, st = feedLoad(&in, st, now.Add(20*time.Second), 20, &cmds, 20000)
	if len(got) != 0 {
		t.Fatalf("held under load: %+v, want nothing", got)
	}
	lowFrom := now.Add(40 * time.Second)
	got, _ = feedLoad(&in, st, lowFrom, 60, &cmds, 1000)
	if len(in.Held) != 0 {
		t.Errorf("still held after the low load: %+v", in.Held)
	}
	if len(got) != 1 {
		t.Fatalf("held at low load: %+v, want one undo", got)
	}
	if diff := cmp.Diff(Decision{Remedy: RemedyRewriteDeferral, Action: ActUndo, Setting: SettingRewritePercent, Value: "100", Reason: IDAOFGrowthHigh},
		got[0].d, decisionOpts...); diff != "" {
		t.Errorf("undo (-want +got):\n%s", diff)
	}
	if low := now.Add(got[0].at).Sub(lowFrom); low < r.Dwell || low > r.Dwell+r.Window {
		t.Errorf("undone %s after the load fell, want between Dwell %s and Dwell+Window", low, r.Dwell)
	}
}

func TestDecideRewriteDeferralStaysOffWhenAlreadyZero(t *testing.T) {
	t.Parallel()
	in := decideInput()
	in.Snapshot.Redis.Config[SettingRewritePercent] = "0"
	cmds := int64(1e6)
	if got, _ := feedLoad(&in, State{}, now, 15, &cmds, 20000); len(got) != 0 {
		t.Errorf("got %+v, want nothing: auto rewrites are already off", got)
	}
}

func TestDecideRewriteDeferralAOFOff(t *testing.T) {
	t.Parallel()
	in := decideInput()
	in.Snapshot.Redis.Info.AOFEnabled = false
	cmds := int64(1e6)
	if got, _ := feedLoad(&in, State{}, now, 15, &cmds, 20000); len(got) != 0 {
		t.Errorf("got %+v, want nothing without AOF", got)
	}
}

func TestDecideQuietRewrite(t *testing.T) {
	t.Parallel()
	rewrite := Decision{Remedy: RemedyRewriteDeferral, Action: ActBgrewriteaof, Reason: IDAOFGrowthHigh}
	for _, tc := range []struct {
		name  string
		setup func(in *Input)
		want  []Decision
	}{
		{name: "grown at a quiet time", want: []Decision{rewrite}},
		{name: "not grown", setup: func(in *Input) { in.Snapshot.Redis.Info.AOFCurrentSize = 100 * mib }},
		{name: "below min size", setup: func(in *Input) {
			in.Snapshot.Redis.Config["auto-aof-rewrite-min-size"] = "1073741824"
		}},
		{name: "no room", setup: func(in *Input) { in.Snapshot.Host.DataDir.Free = uint64(10 * mib) }},
		{name: "child running", setup: func(in *Input) { in.Snapshot.Redis.Info.RDBBgsaveInProgress = true }},
		{name: "rewrite scheduled", setup: func(in *Input) { in.Snapshot.Redis.Info.AOFRewriteScheduled = true }},
		{name: "disabled", setup: func(in *Input) { ConfigOf[*RewriteDeferralConfig](in.Remedies).Enabled = false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			in.Snapshot.Redis.Info.AOFCurrentSize = 300 * mib
			if tc.setup != nil {
				tc.setup(&in)
			}
			cmds := int64(1e6)
			got, _ := feedLoad(&in, State{}, now, 6, &cmds, 1000)
			var ds []Decision
			for _, g := range got {
				ds = append(ds, g.d)
			}
			if diff := cmp.Diff(tc.want, ds, decisionOpts...); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideRewriteDeferralStopping(t *testing.T) {
	t.Parallel()
	in := decideInput()
	in.Stopping = true
	in.Held = map[string]Held{SettingRewritePercent: {Setting: SettingRewritePercent, Original: "100", Value: "0", Remedy: RemedyRewriteDeferral, Since: now.Add(-time.Minute)}}
	ds, _ := Decide(in, State{})
	want := []Decision{{Remedy: RemedyRewriteDeferral, Action: ActUndo, Setting: SettingRewritePercent, Value: "100", Reason: IDAOFGrowthHigh}}
	if diff := cmp.Diff(want, ds, decisionOpts...); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecideRewriteDeferralCounterReset(t *testing.T) {
	t.Parallel()
	in := decideInput()
	cmds := int64(5e6)
	got, st := feedLoad(&in, State{}, now, 4, &cmds, 1000)
	if len(got) != 0 {
		t.Fatalf("before the restart: %+v", got)
	}
	// Redis restarts: the counter starts again near zero and grows slowly.
	cmds = 100
	got, st = feedLoad(&in, st, now.Add(4*time.Second), 3, &cmds, 1000)
	if len(got) != 0 {
		t.Errorf("after the restart: %+v, want nothing", got)
	}
	for _, s := range rwState(st).Samples {
		if s.T.Before(now.Add(4 * time.Second)) {
			t.Errorf("a sample from before the restart survived: %+v", rwState(st).Samples)
			break
		}
	}
	if rate, ok := OpsRate(rwState(st).Samples); !ok || rate != 1000 {
		t.Errorf("OpsRate after the restart = %v, %v; want 1000, true", rate, ok)
	}
}

func TestOpsRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    float64
		ok      bool
	}{
		{name: "none"},
		{name: "one", samples: []Sample{{now, 1}}},
		{name: "same time", samples: []Sample{{now, 1}, {now, 100}}},
		{name: "counter went down", samples: []Sample{{now, 100}, {now.Add(time.Second), 1}}},
		{name: "rate", samples: []Sample{{now, 0}, {now.Add(5 * time.Second), 1}, {now.Add(10 * time.Second), 200000}}, want: 20000, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := OpsRate(tc.samples)
			if got != tc.want || ok != tc.ok {
				t.Errorf("OpsRate = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func staleTemp(name string) monitor.TempFile {
	return monitor.TempFile{Path: "/var/lib/redis/" + name, Kind: monitor.TempBgsave, Size: 40 * mib,
		ModTime: now.Add(-time.Hour), PID: 999999, PIDAlive: monitor.No}
}

func TestDecideTempCleanup(t *testing.T) {
	t.Parallel()
	// The decision carries the age it was judged with: the executor checks every
	// rule again right before the unlink, this one too.
	minAge := DefaultRemedies()[RemedyTempCleanup].(*TempCleanupConfig).MinAge
	del := func(f monitor.TempFile) Decision {
		return Decision{Remedy: RemedyTempCleanup, Action: ActDeleteTemp, Path: f.Path, Reason: IDStaleTempFiles, MinAge: minAge}
	}
	delNow := func(f monitor.TempFile) Decision {
		d := del(f)
		d.MinAge = 0 // a full disk needs every byte now
		return d
	}
	stale := staleTemp("temp-999999.rdb")
	young := stale
	young.ModTime = now.Add(-time.Minute)
	with := func(fs ...monitor.TempFile) func(in *Input, _ *State) {
		return func(in *Input, _ *State) { in.Snapshot.Host.TempFiles = fs }
	}
	then := func(a, b func(in *Input, st *State)) func(in *Input, st *State) {
		return func(in *Input, st *State) { a(in, st); b(in, st) }
	}
	runDecideCases(t, RemedyTempCleanup, []decideCase{
		{name: "stale", setup: with(stale), want: []Decision{del(stale)}},
		{name: "young", setup: with(young)},
		{name: "young on a full disk", setup: then(with(young), func(in *Input, _ *State) { in.Snapshot.Host.DataDir.Free = 0 }),
			want: []Decision{delNow(young)}},
		{name: "young when the snapshot will not fit", setup: then(with(young), func(in *Input, _ *State) { in.Snapshot.Host.DataDir.Free = uint64(mib) }),
			want: []Decision{delNow(young)}},
		{name: "young while AOF writes fail on a full AOF dir", setup: then(with(young), func(in *Input, _ *State) {
			in.Snapshot.Redis.Info.AOFLastWriteStatus = "err"
			in.Snapshot.Host.AOFDir.Free = 4096
		}), want: []Decision{delNow(young)}},
		{name: "pid alive", setup: with(func() monitor.TempFile { f := stale; f.PIDAlive = monitor.Yes; return f }())},
		{name: "pid unknown", setup: with(func() monitor.TempFile { f := stale; f.PIDAlive = monitor.Unknown; return f }())},
		{name: "child running", setup: then(with(stale), func(in *Input, _ *State) { in.Snapshot.Redis.Info.RDBBgsaveInProgress = true })},
		{name: "loading", setup: then(with(stale), func(in *Input, _ *State) { in.Snapshot.Redis.Info.Loading = true })},
		{name: "disabled", setup: then(with(stale), func(in *Input, _ *State) { ConfigOf[*TempCleanupConfig](in.Remedies).Enabled = false })},
		{name: "host unavailable", setup: then(with(stale), func(in *Input, _ *State) { in.Snapshot.Host.Available = false })},
		{name: "stopping", setup: then(with(stale), func(in *Input, _ *State) { in.Stopping = true })},
		{name: "hourly cap applies per file", setup: then(with(stale, staleTemp("temp-999998.rdb"), staleTemp("temp-999997.rdb")),
			func(in *Input, st *State) {
				ConfigOf[*TempCleanupConfig](in.Remedies).MaxPerHour = 3
				st.Shared.Actions = map[string][]time.Time{RemedyTempCleanup: {now.Add(-time.Minute)}}
			}), want: []Decision{del(stale), del(staleTemp("temp-999998.rdb"))}},
	})
}

func TestDecideTempCleanupDoesNotCountActions(t *testing.T) {
	t.Parallel()
	in := decideInput()
	in.Snapshot.Host.TempFiles = []monitor.TempFile{staleTemp("temp-999999.rdb"), staleTemp("temp-999998.rdb")}
	ds, st := Decide(in, State{})
	if len(ds) != 2 {
		t.Fatalf("got %d decisions, want 2", len(ds))
	}
	if n := len(st.Shared.Actions[RemedyTempCleanup]); n != 0 {
		t.Errorf("Decide counted %d actions; only Observe counts them", n)
	}
	outs := []Outcome{{Decision: ds[0], OK: true}, {Decision: ds[1], OK: true}}
	if n := len(Observe(st, now, outs).Shared.Actions[RemedyTempCleanup]); n != 2 {
		t.Errorf("Observe counted %d actions, want 2", n)
	}
}

func TestObserveBacksOff(t *testing.T) {
	t.Parallel()
	in := decideInput()
	misconf(&in)
	ConfigOf[*BgsaveRetryConfig](in.Remedies).Enabled = false
	ds, st := Decide(in, State{})
	if len(ds) != 1 || ds[0].Action != ActSet {
		t.Fatalf("got %+v, want one ActSet", ds)
	}
	failed := []Outcome{{Decision: ds[0], Err: "NOPERM this user has no permissions to run the 'config|set' command"}}
	t0 := now
	for i, back := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 320 * time.Second, 640 * time.Second, 640 * time.Second} {
		st = Observe(st, t0, failed)
		if got := st.Shared.FailedUntil[RemedyStopWrites]; !got.Equal(t0.Add(back)) {
			t.Fatalf("failure %d: FailedUntil +%s, want +%s", i+1, got.Sub(t0), back)
		}
		if got := st.Shared.FailCount[RemedyStopWrites]; got != i+1 {
			t.Errorf("failure %d: FailCount %d", i+1, got)
		}
		ds, st = Decide(at(in, t0.Add(back-time.Millisecond)), st)
		if len(ds) != 1 || ds[0].Action != ActSuppressed || ds[0].Limit != LimitBackoff {
			t.Fatalf("failure %d: decided %+v during the backoff, want it reported suppressed", i+1, ds)
		}
		ds, st = Decide(at(in, t0.Add(back-time.Millisecond)), st)
		if len(ds) != 0 {
			t.Fatalf("failure %d: decided %+v during the backoff after reporting it", i+1, ds)
		}
		t0 = t0.Add(back)
		ds, st = Decide(at(in, t0), st)
		if len(ds) != 1 {
			t.Fatalf("failure %d: got %+v after the backoff, want one decision", i+1, ds)
		}
	}
	st = Observe(st, t0, []Outcome{{Decision: ds[0], OK: true}})
	if _, ok := st.Shared.FailedUntil[RemedyStopWrites]; ok {
		t.Errorf("FailedUntil kept after a success: %+v", st.Shared.FailedUntil)
	}
	if _, ok := st.Shared.FailCount[RemedyStopWrites]; ok {
		t.Errorf("FailCount kept after a success: %+v", st.Shared.FailCount)
	}
	if diff := cmp.Diff([]time.Time{t0}, st.Shared.Actions[RemedyStopWrites]); diff != "" {
		t.Errorf("Actions (-want +got):\n%s", diff)
	}
}

func TestObserve(t *testing.T) {
	t.Parallel()
	warn := Decision{Remedy: RemedyStopWrites, Action: ActWarn}
	st := Observe(State{}, now, []Outcome{{Decision: warn, OK: true}, {Decision: warn, Err: "x"}})
	if len(st.Shared.Actions) != 0 || len(st.Shared.FailCount) != 0 {
		t.Errorf("warnings counted: %+v", st)
	}
	st = Observe(st, now, []Outcome{{Decision: bgsave, OK: true}, {Decision: bgsave, Err: "ERR"}})
	if bgState(st).RetryAttempt != 1 {
		t.Errorf("RetryAttempt = %d after one successful BGSAVE, want 1", bgState(st).RetryAttempt)
	}
	// Failures of one remedy do not back off another.
	st = Observe(State{}, now, []Outcome{{Decision: bgsave, Err: "ERR"}})
	in := decideInput()
	misconf(&in)
	ds, _ := Decide(in, st)
	if diff := cmp.Diff([]Decision{{Remedy: RemedyStopWrites, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: IDMisconfRDB, Urgent: true}}, ds, decisionOpts...); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// fullState has every map and slice of State filled, some entries older than an
// hour, so pruning would show if it touched the caller's copy.
func fullState() State {
	return State{
		Shared: Shared{
			Actions: map[string][]time.Time{
				RemedyStopWrites:      {now.Add(-2 * time.Hour), now.Add(-90 * time.Minute), now.Add(-time.Minute)},
				RemedyBgsaveRetry:     {now.Add(-3 * time.Hour), now.Add(-time.Hour)},
				RemedyTempCleanup:     {now.Add(-2 * time.Hour)},
				RemedyRewriteDeferral: {now.Add(-2 * time.Hour)},
			},
			FailedUntil: map[string]time.Time{RemedyRewriteDeferral: now.Add(-time.Second)},
			FailCount:   map[string]int{RemedyRewriteDeferral: 2},
			Yielded:     map[string]time.Time{Yield{RemedyRewriteDeferral, SettingRewritePercent}.key(): now.Add(-time.Minute)},
		},
		remedies: map[string]any{
			RemedyBgsaveRetry: bgsaveRetryState{SaveFailedAt: now.Add(-time.Hour), NextRetry: now.Add(-time.Second),
				PrevKnown: true, PrevWritable: monitor.No, PrevFree: uint64(mib)},
			RemedyRewriteDeferral: rewriteDeferralState{
				Samples: []Sample{{now.Add(-20 * time.Second), 1}, {now.Add(-11 * time.Second), 2}, {now.Add(-5 * time.Second), 3e5}}},
		},
	}
}

func TestDecideDoesNotModifyState(t *testing.T) {
	t.Parallel()
	mkInput := func() Input {
		in := decideInput()
		misconf(&in)
		in.Snapshot.Redis.Info.AOFCurrentSize = 300 * mib
		in.Snapshot.Host.TempFiles = []monitor.TempFile{staleTemp("temp-999999.rdb")}
		in.Held = map[string]Held{SettingRewritePercent: {Setting: SettingRewritePercent, Original: "100", Value: "0"}}
		return in
	}
	in, st := mkInput(), fullState()
	ds, next := Decide(in, st)
	if len(ds) == 0 {
		t.Fatal("no decisions: the test does not exercise the remedies")
	}
	if diff := cmp.Diff(fullState(), st, stateOpts); diff != "" {
		t.Errorf("Decide modified its state (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(mkInput(), in, cmp.Comparer(func(a, b error) bool { return a == b }), cmpopts.IgnoreFields(Input{}, "Rand")); diff != "" {
		t.Errorf("Decide modified its input (-before +after):\n%s", diff)
	}
	// Nor does Observe, on the state Decide returned.
	snap := next.clone()
	_ = Observe(next, now, []Outcome{{Decision: ds[0], OK: true}, {Decision: ds[0], Err: "x"}})
	if diff := cmp.Diff(snap, next, cmpopts.EquateEmpty(), stateOpts); diff != "" {
		t.Errorf("Observe modified its state (-before +after):\n%s", diff)
	}
}

func TestDecideIsDeterministic(t *testing.T) {
	t.Parallel()
	in := decideInput()
	misconf(&in)
	in.Snapshot.Host.TempFiles = []monitor.TempFile{staleTemp("temp-999999.rdb")}
	a, sa := Decide(in, fullState())
	b, sb := Decide(in, fullState())
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("decisions differ:\n%s", diff)
	}
	if diff := cmp.Diff(sa, sb, stateOpts); diff != "" {
		t.Errorf("states differ:\n%s", diff)
	}
}

// The remedies' own states, as the tests read them.
func swState(st State) stopWritesState {
	s, _ := st.remedies[RemedyStopWrites].(stopWritesState)
	return s
}
func bgState(st State) bgsaveRetryState {
	s, _ := st.remedies[RemedyBgsaveRetry].(bgsaveRetryState)
	return s
}
func rwState(st State) rewriteDeferralState {
	s, _ := st.remedies[RemedyRewriteDeferral].(rewriteDeferralState)
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

// TestUrgentFirst: urgent decisions move before the others; each group keeps the
// order the remedies decided in.
func TestUrgentFirst(t *testing.T) {
	t.Parallel()
	d := func(remedy string, urgent bool) Decision { return Decision{Remedy: remedy, Urgent: urgent} }
	for _, tc := range []struct {
		name     string
		in, want []Decision
	}{
		{name: "none"},
		{name: "no urgent", in: []Decision{d("a", false), d("b", false)}, want: []Decision{d("a", false), d("b", false)}},
		{name: "urgent last", in: []Decision{d("a", false), d("b", false), d("c", true)},
			want: []Decision{d("c", true), d("a", false), d("b", false)}},
		{name: "stable in both groups", in: []Decision{d("a", false), d("b", true), d("c", false), d("d", true)},
			want: []Decision{d("b", true), d("d", true), d("a", false), d("c", false)}},
		{name: "all urgent", in: []Decision{d("a", true), d("b", true)}, want: []Decision{d("a", true), d("b", true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := slices.Clone(tc.in)
			urgentFirst(got)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideStormHoldFirst: the tick that sees a rewrite storm caused by the
// process limit also predicts the failure of the next save. stop_writes comes
// first in the Registry, and its predicted toggle is recorded durably (an fsync
// on a busy disk): the storm hold, which each cron tick without it costs an INCR
// file, is urgent and goes first; the MISCONF lift goes before both.
func TestDecideStormHoldFirst(t *testing.T) {
	t.Parallel()
	hold := Decision{Remedy: RemedyRewriteRetry, Action: ActSet, Setting: SettingRewritePercent, Value: "0", Reason: IDAOFRewriteStorm, Urgent: true}
	for _, tc := range []struct {
		name  string
		setup func(in *Input)
		want  []Decision
	}{
		{name: "storm and a predicted save failure", setup: func(in *Input) { nprocAt(in, 64, 64) }, want: []Decision{hold,
			{Remedy: RemedyStopWrites, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: IDForkNprocExhausted}}},
		{name: "storm and a failed save", setup: misconf, want: []Decision{
			{Remedy: RemedyStopWrites, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: IDMisconfRDB, Urgent: true}, hold}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			storm(&in)
			tc.setup(&in)
			got, _ := Decide(in, State{})
			// bgsave_retry's retry of a failed save is not what this test is about.
			got = slices.DeleteFunc(got, func(d Decision) bool { return d.Remedy == RemedyBgsaveRetry })
			if diff := cmp.Diff(tc.want, got, decisionOpts...); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			res, _ := Evaluate(in, State{})
			ev := slices.DeleteFunc(res.Decisions, func(d Decision) bool { return d.Remedy == RemedyBgsaveRetry })
			if diff := cmp.Diff(got, ev, decisionOpts...); diff != "" {
				t.Errorf("Evaluate's decisions differ from Decide's (-decide +evaluate):\n%s", diff)
			}
		})
	}
}
