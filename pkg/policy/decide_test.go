package policy

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// stateOpts compare States with the remedies' own states: every unexported field
// of this package's types, so no list of the remedies' state types is kept here.
var stateOpts = cmp.Exporter(func(t reflect.Type) bool { return t.PkgPath() == reflect.TypeFor[State]().PkgPath() })

// decisionOpts compare decisions without their readable Detail, which is checked
// separately where it matters.
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

// nprocAt puts Redis's uid at tasks of a soft RLIMIT_NPROC of limit.
func nprocAt(in *Input, limit, tasks int64) {
	in.Snapshot.Host.NprocLimit, in.Snapshot.Host.NprocUID, in.Snapshot.Host.UIDTasks = limit, 102, tasks
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
			Yielded:     map[string]time.Time{Yield{Remedy: RemedyRewriteDeferral, Setting: SettingRewritePercent}.key(): now.Add(-time.Minute)},
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
