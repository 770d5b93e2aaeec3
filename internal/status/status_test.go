package status

import (
	"testing"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestOKWithStandingHold: oom_shield holds for as long as the instance forks, so
// its entry alone leaves status at 0; any other hold makes it 1.
func TestOKWithStandingHold(t *testing.T) {
	t.Parallel()
	shield := Held{Setting: policy.SettingOOMScoreAdj, Value: "relative", Original: "no", Remedy: policy.RemedyOOMShield}
	toggle := Held{Setting: policy.SettingStopWrites, Value: "no", Original: "yes", Remedy: policy.RemedyStopWrites}
	for _, tc := range []struct {
		name string
		held []Held
		want bool
	}{
		{"nothing held", nil, true},
		{"oom_shield only", []Held{shield}, true},
		{"a stop_writes toggle", []Held{toggle}, false},
		{"both", []Held{shield, toggle}, false},
	} {
		r := Report{Instances: []Instance{{Name: "main", Held: tc.held}}}
		if got := r.OK(); got != tc.want {
			t.Errorf("%s: OK() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
