package metrics_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/metrics"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

func TestMetricsLint(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	m.AddInstance("main", []string{policy.RemedyStopWrites})
	m.Tick(daemon.TickReport{Instance: "main", Start: time.Now(), Duration: time.Millisecond, Up: true,
		Findings: []policy.Finding{{ID: policy.IDMisconfRDB, Severity: policy.Critical}}, WritesRejected: true})
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestTicksAndEvents(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	m.AddInstance("main", []string{policy.RemedyStopWrites})
	t0 := time.Unix(1_700_000_000, 0)
	misconf := []policy.Finding{{ID: policy.IDMisconfRDB, Severity: policy.Critical}}
	held := []remediate.Change{{Setting: policy.SettingStopWrites, Value: "no"}}
	m.Tick(daemon.TickReport{Instance: "main", Start: t0, Duration: 10 * time.Millisecond, Up: true, Findings: misconf, WritesRejected: true})
	m.RemedyEvent("main", events.RemedyApplied, policy.RemedyStopWrites, "")
	m.RemedyEvent("main", "remedy_held", policy.RemedyStopWrites, "") // not a counted event
	m.RemedyEvent("main", events.RemedySuppressed, policy.RemedyStopWrites, policy.LimitMaxPerHour)
	m.Tick(daemon.TickReport{Instance: "main", Start: t0.Add(time.Second), Duration: 10 * time.Millisecond, Up: true, Findings: misconf, Held: held, WritesRejected: true})
	m.Tick(daemon.TickReport{Instance: "main", Start: t0.Add(2 * time.Second), Duration: 10 * time.Millisecond, Up: true, Held: held})

	want := `
# HELP redis_guardian_findings_active 1 for each finding raised on an instance at its last tick.
# TYPE redis_guardian_findings_active gauge
# HELP redis_guardian_held_changes Settings the guardian currently holds changed (recorded in its ledger).
# TYPE redis_guardian_held_changes gauge
redis_guardian_held_changes{instance="main"} 1
# HELP redis_guardian_remedies_applied_total Remedies carried out (settings changed, BGSAVE/BGREWRITEAOF started, temp files removed, clients disconnected), by remedy.
# TYPE redis_guardian_remedies_applied_total counter
redis_guardian_remedies_applied_total{instance="main",remedy="stop_writes"} 1
# HELP redis_guardian_remedies_suppressed_total Remedies a limit held back (reason: max_per_hour or backoff), once per episode, by remedy.
# TYPE redis_guardian_remedies_suppressed_total counter
redis_guardian_remedies_suppressed_total{instance="main",reason="backoff",remedy="stop_writes"} 0
redis_guardian_remedies_suppressed_total{instance="main",reason="max_per_hour",remedy="stop_writes"} 1
# HELP redis_guardian_writes_rejected_seconds_total Time between consecutive ticks that both saw Redis rejecting writes (MISCONF); a lower bound.
# TYPE redis_guardian_writes_rejected_seconds_total counter
redis_guardian_writes_rejected_seconds_total{instance="main"} 1
# HELP redis_guardian_instance_up 1 when the last tick could read the Redis instance, 0 when it was unreachable.
# TYPE redis_guardian_instance_up gauge
redis_guardian_instance_up{instance="main"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"redis_guardian_findings_active", "redis_guardian_held_changes", "redis_guardian_remedies_applied_total", "redis_guardian_remedies_suppressed_total",
		"redis_guardian_writes_rejected_seconds_total", "redis_guardian_instance_up"); err != nil {
		t.Error(err)
	}

	m.Tick(daemon.TickReport{Instance: "main", Start: t0.Add(3 * time.Second), Up: false})
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(`
# HELP redis_guardian_instance_up 1 when the last tick could read the Redis instance, 0 when it was unreachable.
# TYPE redis_guardian_instance_up gauge
redis_guardian_instance_up{instance="main"} 0
`), "redis_guardian_instance_up"); err != nil {
		t.Errorf("after an unreachable tick: %v", err)
	}
	m.RemoveInstance("main")
	n, err := testutil.GatherAndCount(m.Registry, "redis_guardian_instance_up", "redis_guardian_remedies_applied_total", "redis_guardian_tick_duration_seconds",
		"redis_guardian_fork_slot_held")
	if err != nil || n != 0 {
		t.Errorf("after RemoveInstance %d series remain (err %v)", n, err)
	}
}

// TestForkSlots: who holds the host's fork slots, as each instance's tick saw
// them (issue 23: metrics show who holds the slot).
func TestForkSlots(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	m.AddInstance("main", nil)
	m.AddInstance("cache", nil)
	m.AddInstance("lost", nil)
	t0 := time.Unix(1_700_000_000, 0)
	m.Tick(daemon.TickReport{Instance: "main", Start: t0, Up: true, Fork: monitor.ForkView{Known: true, Slots: 2, Mine: true, Others: []string{"other 12"},
		Waiters: []monitor.ForkWaiter{{Holder: "cache 1", Since: t0}}}})
	m.Tick(daemon.TickReport{Instance: "cache", Start: t0, Up: true, Fork: monitor.ForkView{Known: true, Slots: 2, Others: []string{"main 1", "other 12"}, Waiting: t0}})
	m.Tick(daemon.TickReport{Instance: "lost", Start: t0, Up: true, Fork: monitor.ForkView{Slots: 2, Err: "permission denied"}})
	want := `
# HELP redis_guardian_fork_slot_held 1 while the instance holds one of the host's fork slots (fork_budget: its fork child runs, or is about to).
# TYPE redis_guardian_fork_slot_held gauge
redis_guardian_fork_slot_held{instance="cache"} 0
redis_guardian_fork_slot_held{instance="lost"} 0
redis_guardian_fork_slot_held{instance="main"} 1
# HELP redis_guardian_fork_slots_busy The host's fork slots held by any instance of any guardian, as the instance's last tick saw them.
# TYPE redis_guardian_fork_slots_busy gauge
redis_guardian_fork_slots_busy{instance="cache"} 2
redis_guardian_fork_slots_busy{instance="lost"} 0
redis_guardian_fork_slots_busy{instance="main"} 2
# HELP redis_guardian_fork_slots The host's fork slots (fork_budget.max_concurrent) as the instance uses them; 0 when they could not be read.
# TYPE redis_guardian_fork_slots gauge
redis_guardian_fork_slots{instance="cache"} 2
redis_guardian_fork_slots{instance="lost"} 0
redis_guardian_fork_slots{instance="main"} 2
# HELP redis_guardian_fork_waiters The host's instances whose due save waits for a fork slot (this one included), as the instance's last tick saw them.
# TYPE redis_guardian_fork_waiters gauge
redis_guardian_fork_waiters{instance="cache"} 1
redis_guardian_fork_waiters{instance="lost"} 0
redis_guardian_fork_waiters{instance="main"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"redis_guardian_fork_slot_held", "redis_guardian_fork_slots_busy", "redis_guardian_fork_slots", "redis_guardian_fork_waiters"); err != nil {
		t.Error(err)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	h := m.Handler(health{ready: false}, zap.NewNop())
	for path, want := range map[string]int{"/metrics": 200, "/-/healthy": 200, "/-/ready": 503, "/debug/pprof/": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d: %s", path, rec.Code, want, rec.Body.String())
		}
	}
}

type health struct{ ready bool }

func (h health) Healthy() error { return nil }
func (h health) Ready() error {
	if !h.ready {
		return errors.New("starting")
	}
	return nil
}
