package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRewriteDeferredTooLong: the deferral's own finding is dated by the ledger's
// entry (the truth across restarts of the guardian), not by a clock in the loop.
func TestRewriteDeferredTooLong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		since  time.Duration
		remedy string
		ignore bool
		want   bool
	}{
		{name: "deferred two hours", since: 2 * time.Hour, remedy: RemedyRewriteDeferral, want: true},
		{name: "within the limit", since: 30 * time.Minute, remedy: RemedyRewriteDeferral},
		{name: "held by another remedy", since: 2 * time.Hour, remedy: "aof_storm"},
		{name: "ignored", since: 2 * time.Hour, remedy: RemedyRewriteDeferral, ignore: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			in.Snapshot.Time = now
			in.Held = map[string]Held{SettingRewritePercent: {Setting: SettingRewritePercent, Original: "100", Value: "0",
				Remedy: tc.remedy, Since: now.Add(-tc.since)}}
			if tc.ignore {
				in.Ignore = map[string]bool{IDRewriteDeferredTooLong: true}
			}
			res, _ := Evaluate(in, State{})
			var got *Finding
			for i, f := range res.Findings {
				if f.ID == IDRewriteDeferredTooLong {
					got = &res.Findings[i]
				}
			}
			if (got != nil) != tc.want {
				t.Fatalf("rewrite_deferred_too_long raised = %v, want %v (findings %+v)", got != nil, tc.want, res.Findings)
			}
			if got != nil {
				if got.Severity != Critical || !strings.Contains(got.Summary, "deferred for 2h0m0s") || got.Fix == "" {
					t.Errorf("finding = %+v, want critical, 'deferred for 2h0m0s', a fix", *got)
				}
			}
		})
	}
}

// TestRewriteDeferralYields: an operator who sets the percentage while the
// guardian defers wins for the whole high-load episode; once the load has fallen,
// the next episode may defer again.
func TestRewriteDeferralYields(t *testing.T) {
	t.Parallel()
	in := decideInput()
	cmds := int64(1e6)
	got, st := feedLoad(&in, State{}, now, 20, &cmds, 20000)
	if len(got) != 1 || got[0].d.Action != ActSet {
		t.Fatalf("under load: %+v, want one deferral", got)
	}
	// The operator sets 200; reconciliation drops the entry and reports the yield.
	in.Held = map[string]Held{}
	in.Snapshot.Redis.Config[SettingRewritePercent] = "200"
	yield := at(in, now.Add(20*time.Second))
	yield.Snapshot.Redis.Info.TotalCommandsProcessed = cmds
	yield.Yielded = []Yield{{Remedy: RemedyRewriteDeferral, Setting: SettingRewritePercent}}
	ds, st := Decide(yield, st)
	cmds += 20000
	if rw := only(ds, RemedyRewriteDeferral); len(rw) != 0 {
		t.Fatalf("at the yield: %+v, want nothing", rw)
	}
	got, st = feedLoad(&in, st, now.Add(21*time.Second), 60, &cmds, 20000)
	if len(got) != 0 {
		t.Fatalf("still under load after the operator's change: %+v, want the operator's value left alone", got)
	}
	// The load falls (the episode ends), then rises again: a new deferral.
	got, st = feedLoad(&in, st, now.Add(81*time.Second), 20, &cmds, 100)
	for _, d := range got {
		if d.d.Action == ActSet {
			t.Fatalf("deferred at low load: %+v", got)
		}
	}
	got, _ = feedLoad(&in, st, now.Add(101*time.Second), 20, &cmds, 20000)
	if len(got) != 1 || got[0].d.Action != ActSet {
		t.Errorf("the next high-load episode: %+v, want one deferral", got)
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

// rwState is rewrite_deferral's own state, as the tests read it.
func rwState(st State) rewriteDeferralState {
	s, _ := st.remedies[RemedyRewriteDeferral].(rewriteDeferralState)
	return s
}

// TestRewriteDeferralLeavesOthersHold: the load deferral neither undoes nor
// rewrites while rewrite_retry holds the percentage, however low the load.
func TestRewriteDeferralLeavesOthersHold(t *testing.T) {
	t.Parallel()
	in := decideInput()
	storm(&in)
	holdPercent(&in, RemedyRewriteRetry)
	cmds := int64(1e6)
	got, _ := feedLoad(&in, State{}, now, 120, &cmds, 10)
	if len(got) != 0 {
		t.Errorf("the deferral acted on rewrite_retry's hold: %+v", got)
	}
}

// TestRewriteDeferralBoundedByDisk: under load the deferral ends once the AOF
// dir's free space falls under twice the new base (the growth would otherwise eat
// the room the rewrite needs), and does not start on a disk under three times.
func TestRewriteDeferralBoundedByDisk(t *testing.T) {
	t.Parallel()
	base := decideInput()
	exp := ExpectedRewrite(base.Snapshot)
	for _, tc := range []struct {
		name string
		held bool
		free int64
		want Action // "" for nothing
	}{
		{name: "held, disk roomy", held: true, free: 10 * exp},
		{name: "held, under twice the base", held: true, free: 2*exp - 1, want: ActUndo},
		{name: "not held, between 2x and 3x: no new deferral", free: 3*exp - 1},
		{name: "not held, roomy: deferred", free: 10 * exp, want: ActSet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			if tc.held {
				holdPercent(&in, RemedyRewriteDeferral)
			}
			in.Snapshot.Host.AOFDir.Free = uint64(tc.free)
			cmds := int64(1e6)
			got, _ := feedLoad(&in, State{}, now, 8, &cmds, 20000)
			var acts []Action
			for _, g := range got {
				acts = append(acts, g.d.Action)
			}
			if (tc.want == "" && len(acts) != 0) || (tc.want != "" && (len(acts) == 0 || acts[0] != tc.want)) {
				t.Errorf("decisions %v, want first %q", acts, tc.want)
			}
		})
	}
}
