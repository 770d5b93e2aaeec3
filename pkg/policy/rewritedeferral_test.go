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
