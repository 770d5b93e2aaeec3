package supervisor

import (
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

func TestStatusLine(t *testing.T) {
	t.Parallel()
	now := time.Unix(10_000, 0)
	held := []remediate.Change{{Setting: "stop-writes-on-bgsave-error", Value: "no", Time: now.Add(-3*time.Minute - 10*time.Second)}}
	f := func(ids ...string) []policy.Finding {
		var fs []policy.Finding
		for _, id := range ids {
			fs = append(fs, policy.Finding{ID: id})
		}
		return fs
	}
	for _, tc := range []struct {
		names   []string
		reports []*daemon.TickReport
		want    string
	}{
		{[]string{"main"}, []*daemon.TickReport{nil}, "1 instance: main starting"},
		{[]string{"main"}, []*daemon.TickReport{{Up: true}}, "1 instance: main ok"},
		{[]string{"cache", "main"}, []*daemon.TickReport{{Up: true, Findings: f("bgsave_failed"), Held: held}, {Up: false}},
			"2 instances: cache bgsave_failed, holding stop-writes-on-bgsave-error=no 3m; main unreachable"},
		{[]string{"x"}, []*daemon.TickReport{{Up: true, Findings: f("a", "b", "c", "d")}}, "1 instance: x a, b, +2"},
	} {
		if got := statusLine(tc.names, tc.reports, now); got != tc.want {
			t.Errorf("statusLine = %q\n                want %q", got, tc.want)
		}
	}
	if got := roughly(2*time.Hour + 5*time.Minute); got != "2h05m" {
		t.Errorf("roughly(2h5m) = %q", got)
	}
}
