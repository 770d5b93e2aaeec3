package policy

import (
	"strings"
	"testing"
	"time"
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
