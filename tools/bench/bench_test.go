package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

func TestScenarioTurnsFatalIntoErrorAndCleansUp(t *testing.T) {
	t.Parallel()
	var order []string
	err := scenario("s", false, func(bt *benchT) {
		bt.Cleanup(func() { order = append(order, "first") })
		bt.Cleanup(func() { order = append(order, "second") })
		bt.Fatalf("boom %d", 1)
		order = append(order, "after fatal")
	})
	if err == nil || !strings.Contains(err.Error(), "boom 1") {
		t.Errorf("scenario error = %v, want one naming the Fatalf message", err)
	}
	if strings.Join(order, ",") != "second,first" {
		t.Errorf("order = %v, want cleanups last-in first-out and nothing after Fatal", order)
	}
	if err := scenario("ok", false, func(*benchT) {}); err != nil {
		t.Errorf("scenario without failure = %v", err)
	}
	if err := scenario("errorf", false, func(bt *benchT) { bt.Errorf("soft") }); err == nil {
		t.Error("scenario with Errorf returned nil")
	}
}

func TestMedianPercentile(t *testing.T) {
	t.Parallel()
	if got := median([]float64{3, 1, 2, 10}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
	d := []time.Duration{5, 1, 4, 2, 3}
	if got := percentile(d, 50); got != 3 {
		t.Errorf("p50 = %v, want 3", got)
	}
	if got := percentile(d, 99); got != 5 {
		t.Errorf("p99 of 5 samples = %v, want the maximum 5", got)
	}
}

func TestWindowResult(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	w := &writer{oks: []time.Time{ms(1), ms(2), ms(40), ms(41)}, rejects: []time.Time{ms(10), ms(11), ms(30)}}
	res, ok := w.result(t0)
	if !ok || res.rejected != 3 || res.toWritable != 30*time.Millisecond {
		t.Errorf("result = %+v, %v; want 3 rejected and 30ms to writable", res, ok)
	}
	w = &writer{oks: []time.Time{ms(1)}, rejects: []time.Time{ms(10)}}
	if _, ok := w.result(t0); ok {
		t.Error("result reports writable with no accepted write after the reject")
	}
}

// TestEnableOnly: the growing-dataset step enables a remedy it knows only by
// name, through its Configure, as a config file with `enabled: true` would.
func TestEnableOnly(t *testing.T) {
	if !registered(policy.RemedyForkBudget) || registered("no_such_remedy") {
		t.Fatalf("registered: fork_budget %v, no_such_remedy %v", registered(policy.RemedyForkBudget), registered("no_such_remedy"))
	}
	off := 0
	for _, r := range policy.Registry {
		cfg := r.DefaultConfig()
		if !cfg.RateLimits().Enabled {
			off++
		}
		cfg.Configure(enableOnly{})
		if !cfg.RateLimits().Enabled {
			t.Errorf("%s: still disabled after Configure(enableOnly{})", r.Name())
		}
	}
	if off == 0 {
		t.Errorf("no opt-in remedy in the registry: the test proves nothing")
	}
}

// TestSoakSection: the report carries the soak notes' Figures section over,
// and only it, so regenerating docs/benchmarks.md keeps the soak's figures.
func TestSoakSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "soak.md")
	doc := "# Soak\n\n## What runs\n\nstuff\n\n## Figures\n\n| kind | n |\n|---|---|\n| fork_fail | 3 |\n\n## After\n\nmore\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	soakSection(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, path)
	got := b.String()
	if !strings.Contains(got, "## Fault soak") || !strings.Contains(got, "| fork_fail | 3 |") || strings.Contains(got, "stuff") || strings.Contains(got, "more") {
		t.Errorf("section:\n%s", got)
	}
	b.Reset()
	soakSection(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, filepath.Join(t.TempDir(), "missing.md"))
	if b.Len() != 0 {
		t.Errorf("a missing file wrote %q", b.String())
	}
}
