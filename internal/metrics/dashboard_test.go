package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/metrics"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// TestDashboardMetricsExist: every metric the shipped Grafana dashboard queries is
// one the guardian exports (its PromQL is parsed by scripts/dashboard-check.sh).
func TestDashboardMetricsExist(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../packaging/grafana/redis-guardian.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}

	// Every series exists once an instance has ticked with a finding and a held
	// change and every remedy event has happened.
	m := metrics.New("test")
	m.AddInstance("main", policy.RemedyNames())
	m.Tick(daemon.TickReport{Instance: "main", Start: time.Now(), Duration: time.Millisecond, Up: true,
		Findings: []policy.Finding{{ID: policy.IDMisconfRDB, Severity: policy.Critical}},
		Held:     []remediate.Change{{Setting: policy.SettingStopWrites, Value: "no", Time: time.Now()}}})
	for _, ev := range []events.Name{events.RemedyApplied, events.RemedyUndone, events.RemedyFailed, events.RemedyYielded} {
		m.RemedyEvent("main", ev, policy.RemedyStopWrites, "")
	}
	m.RemedyEvent("main", events.RemedySuppressed, policy.RemedyStopWrites, policy.LimitMaxPerHour)
	m.Reloaded(true)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range fams {
		exported[f.GetName()] = true
	}

	name := regexp.MustCompile(`redis_guardian_[a-z_]+`)
	var texts []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			texts = append(texts, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		texts = append(texts, v.Definition)
	}
	seen := 0
	for _, text := range texts {
		for _, n := range name.FindAllString(text, -1) {
			seen++
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suf); ok && exported[b] {
					base = b
				}
			}
			if !exported[base] {
				t.Errorf("the dashboard queries %s, which the guardian does not export", n)
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d metric references found in the dashboard", seen)
	}
}
