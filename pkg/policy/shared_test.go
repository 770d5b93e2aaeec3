package policy

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// TestSharedQueriesOnlyRead: asking Shared (Limit, Allowed, Budget, IsYielded)
// changes nothing in it, actions older than an hour included: only prune, a step
// of its own, forgets those.
func TestSharedQueriesOnlyRead(t *testing.T) {
	t.Parallel()
	sh := fullState().Shared.clone()
	sh.Suppressed[RemedyTempCleanup] = LimitMaxPerHour
	before := sh.clone()
	rs := DefaultRemedies()
	for _, r := range Registry {
		l := rs[r.Name()].RateLimits()
		l.Enabled, l.Cooldown = true, time.Minute
		for _, at := range []time.Time{now, now.Add(-30 * time.Minute), now.Add(2 * time.Hour)} {
			_ = sh.Limit(r.Name(), l, at)
			_ = sh.Allowed(r.Name(), l, at)
			_ = sh.Budget(r.Name(), l, at)
		}
		for _, s := range r.Settings() {
			_ = sh.IsYielded(r.Name(), s.Name)
		}
	}
	if diff := cmp.Diff(before, sh, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the queries changed Shared (-before +after):\n%s", diff)
	}

	// prune forgets what no limit counts, and the answers stay the same.
	pruned := sh.clone()
	pruned.prune(now)
	want := map[string][]time.Time{
		RemedyStopWrites: {now.Add(-time.Minute)},
	}
	if diff := cmp.Diff(want, pruned.Actions); diff != "" {
		t.Errorf("after prune (-want +got):\n%s", diff)
	}
	for _, r := range Registry {
		l := Limits{Enabled: true, Cooldown: 2 * time.Minute, MaxPerHour: 2}
		if a, b := sh.Limit(r.Name(), l, now), pruned.Limit(r.Name(), l, now); a != b {
			t.Errorf("%s: Limit %q before prune, %q after", r.Name(), a, b)
		}
		if a, b := sh.Budget(r.Name(), l, now), pruned.Budget(r.Name(), l, now); a != b {
			t.Errorf("%s: Budget %d before prune, %d after", r.Name(), a, b)
		}
	}
}

// TestRegistryOrderChangesNoAnswer: the remedies run in Registry's order, and
// that order is the order of a tick's decisions, nothing else: run backwards over
// the same tick, every remedy decides the same, raises the same findings and
// leaves the same state, Shared included (what it was told by Shared could not
// depend on who asked first).
func TestRegistryOrderChangesNoAnswer(t *testing.T) {
	t.Parallel()
	busy := func() Input {
		in := decideInput()
		misconf(&in)
		nprocAt(&in, 64, 64)
		storm(&in)
		in.Snapshot.Redis.Info.AOFCurrentSize = 300 * mib
		in.Snapshot.Host.TempFiles = []monitor.TempFile{staleTemp("temp-999999.rdb"), staleTemp("temp-999998.rdb")}
		in.Held = map[string]Held{SettingRewritePercent: {Setting: SettingRewritePercent, Original: "100", Value: "0",
			Remedy: RemedyRewriteDeferral, Since: now.Add(-2 * time.Hour)}}
		return in
	}
	capped := func() State {
		st := fullState()
		st.Shared.Actions[RemedyTempCleanup] = recentActions(59, now.Add(-time.Minute))
		st.Shared.Actions[RemedyRewriteRetry] = recentActions(12, now.Add(-time.Minute))
		st.Shared.FailedUntil[RemedyStopWrites] = now.Add(time.Minute)
		return st
	}
	backwards := slices.Clone(Registry)
	slices.Reverse(backwards)
	for _, tc := range []struct {
		name string
		st   func() State
	}{{"fresh", func() State { return State{} }}, {"old actions", fullState}, {"limits reached", capped}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fwdD, fwdF, fwdS := decideOver(Registry, busy(), tc.st())
			bwdD, bwdF, bwdS := decideOver(backwards, busy(), tc.st())
			if len(fwdD) == 0 {
				t.Fatal("no decisions: the test does not exercise the remedies")
			}
			for _, r := range Registry {
				if diff := cmp.Diff(only(fwdD, r.Name()), only(bwdD, r.Name())); diff != "" {
					t.Errorf("%s decides differently backwards (-registry order +backwards):\n%s", r.Name(), diff)
				}
			}
			byID := cmpopts.SortSlices(func(a, b Finding) bool { return a.ID < b.ID })
			if diff := cmp.Diff(fwdF, bwdF, byID, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("findings differ (-registry order +backwards):\n%s", diff)
			}
			if diff := cmp.Diff(fwdS, bwdS, stateOpts, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("states differ (-registry order +backwards):\n%s", diff)
			}
		})
	}
}
