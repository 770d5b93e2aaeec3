package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// TestRegistry: what the rest of the program derives from the registry is there
// for every remedy, so a new remedy cannot be half wired. A remedy is opt-in when
// its own defaults say so (Enabled false): nothing else lists them.
func TestRegistry(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	optIn := map[string]bool{}
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
		if cl := (Remedies{r.Name(): c}).Clone()[r.Name()]; cl == c || !reflect.DeepEqual(cl, c) {
			t.Errorf("remedy %s: Clone returned the same pointer or another value (%+v); an instance override would change the global section", r.Name(), cl)
		}
		optIn[r.Name()] = !c.RateLimits().Enabled
		if c.RateLimits().MaxPerHour < 1 {
			t.Errorf("remedy %s: default limits %+v, want an hourly cap", r.Name(), c.RateLimits())
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

// TestEverySettingHasValid: restore writes what a ledger says, so every setting a
// remedy holds must say which values are its own (CheckHeld refuses the rest).
func TestEverySettingHasValid(t *testing.T) {
	t.Parallel()
	for _, r := range Registry {
		for _, s := range r.Settings() {
			if s.Valid == nil {
				t.Errorf("remedy %s: setting %s has no Valid", r.Name(), s.Name)
			}
		}
	}
}

// TestCheckHeld: a ledger entry is undone only when a remedy makes that change;
// a forged entry (the review's requirepass) is refused with a message naming it.
func TestCheckHeld(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                             string
		remedy, setting, original, value string
		wantErr                          string // "" means accepted
	}{
		{"stop_writes", RemedyStopWrites, SettingStopWrites, "yes", "no", ""},
		{"replica_guard", RemedyReplicaGuard, SettingStopWrites, "YES", "no", ""},
		{"rewrite hold", RemedyRewriteRetry, SettingRewritePercent, "100", "0", ""},
		{"fsync relief", RemedyFsyncRelief, SettingNoFsyncOnRewrite, "no", "yes", ""},
		{"replica buffer", RemedyReplicaBuffer, SettingOutputBufferLimit,
			"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", "replica 1073741824 268435456 60", ""},
		{"forged requirepass", RemedyStopWrites, "requirepass", "attacker", "", `never holds "requirepass"`},
		{"forged save", RemedyStopWrites, "save", "", "3600 1", `never holds "save"`},
		{"unknown remedy", "evil", SettingStopWrites, "yes", "no", `no remedy is named "evil"`},
		{"another remedy's setting", RemedyStopWrites, SettingRewritePercent, "100", "0", "never holds"},
		{"bad original", RemedyStopWrites, SettingStopWrites, "yes\nrequirepass x", "no", "original"},
		{"bad value", RemedyRewriteRetry, SettingRewritePercent, "100", "-1", "value"},
		{"bad buffer class", RemedyReplicaBuffer, SettingOutputBufferLimit, "master 1 1 1", "replica 1 1 60", "unknown client class"},
		{"bad buffer shape", RemedyReplicaBuffer, SettingOutputBufferLimit, "replica 1 1", "replica 1 1 60", "groups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckHeld(tc.remedy, tc.setting, tc.original, tc.value)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("accepted, want an error with %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
		})
	}
}

func TestQuoteBounds(t *testing.T) {
	t.Parallel()
	q := Quote(strings.Repeat("x", 1<<20))
	if len(q) > 100 || !strings.Contains(q, "1048576 bytes") {
		t.Errorf("Quote of 1 MiB gave %d bytes: %.120s", len(q), q)
	}
}

// TestConfigOfAnotherTypeIsAbsent: the one type assertion of a configuration is
// in Define's adapter. DefaultRemedies and Clone never put another remedy's type
// under a name; a hand-made map that does is read as not configuring the remedy,
// never a panic.
func TestConfigOfAnotherTypeIsAbsent(t *testing.T) {
	t.Parallel()
	in := decideInput()
	misconf(&in)
	in.Remedies[RemedyStopWrites] = &BgsaveRetryConfig{Limits: Limits{Enabled: true, MaxPerHour: 1}}
	ds, st := Decide(in, State{})
	if got := only(ds, RemedyStopWrites); len(got) != 0 {
		t.Errorf("stop_writes ran on a configuration of another type: %+v", got)
	}
	if _, ok := st.remedies[RemedyStopWrites]; ok {
		t.Errorf("stop_writes kept a state without running")
	}
	if got := only(ds, RemedyBgsaveRetry); len(got) != 0 {
		t.Errorf("the first tick of a failure decided %+v, want the other remedies unchanged (bgsave_retry only schedules)", got)
	}
}
