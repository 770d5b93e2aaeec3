package policy

import (
	"slices"
	"testing"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// TestRegistry: what the rest of the program derives from the registry is there
// for every remedy, so a new remedy cannot be half wired.
// optIn are the remedies off by default: each changes what Redis may spend, which
// an operator should choose.
var optIn = map[string]bool{RemedyReplicaBuffer: true, RemedyFsyncRelief: true}

func TestRegistry(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	params := ConfigParams()
	for _, r := range Registry {
		if names[r.Name()] {
			t.Errorf("remedy %q is registered twice", r.Name())
		}
		names[r.Name()] = true
		c := r.DefaultConfig()
		if c == nil {
			t.Fatalf("remedy %s has no default configuration", r.Name())
		}
		if cl := c.Clone(); cl == c {
			t.Errorf("remedy %s: Clone returned the same pointer; an instance override would change the global section", r.Name())
		}
		if c.RateLimits().Enabled == optIn[r.Name()] || c.RateLimits().MaxPerHour < 1 {
			t.Errorf("remedy %s: default limits %+v, want an hourly cap, enabled unless opt-in", r.Name(), c.RateLimits())
		}
		for _, s := range r.Settings() {
			if !slices.Contains(params, s.Name) {
				t.Errorf("remedy %s holds %s, which CONFIG GET does not fetch: it would never be reconciled", r.Name(), s.Name)
			}
		}
		if ConfigOf[RemedyConfig](Remedies{r.Name(): c}) != c {
			t.Errorf("ConfigOf does not find remedy %s's configuration", r.Name())
		}
	}
	var want []string
	for _, n := range RemedyNames() {
		if !optIn[n] {
			want = append(want, n)
		}
	}
	if got := DefaultRemedies().Enabled(); !slices.Equal(got, want) {
		t.Errorf("Enabled() of the defaults = %q, want every remedy but the opt-in ones, in registry order %q", got, want)
	}
	for _, p := range monitor.ConfigParams {
		if !slices.Contains(params, p) {
			t.Errorf("ConfigParams lost %s, which diagnosis reads", p)
		}
	}
}

// TestSameValue: CONFIG GET may answer in another form than the one set; that is
// not an operator's change.
func TestSameValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		setting, a, b string
		want          bool
	}{
		{SettingStopWrites, "no", "no", true},
		{SettingStopWrites, "NO", "no", true},
		{SettingStopWrites, "no", "yes", false},
		{SettingRewritePercent, "0", "0", true},
		{SettingRewritePercent, "00", "0", true},
		{SettingRewritePercent, "100", "0", false},
		{"some-other-setting", " Value ", "value", true},
	} {
		if got := SameValue(tc.setting, tc.a, tc.b); got != tc.want {
			t.Errorf("SameValue(%s, %q, %q) = %v, want %v", tc.setting, tc.a, tc.b, got, tc.want)
		}
	}
}
