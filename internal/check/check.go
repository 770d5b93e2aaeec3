// Package check runs one diagnosis pass over every configured instance and renders
// it the way monitoring systems expect: a Nagios/Icinga status line with perfdata,
// or JSON.
package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// Exit codes of the monitoring-plugin convention.
const (
	OK       = 0
	WARNING  = 1
	CRITICAL = 2
	UNKNOWN  = 3
)

// Target is one instance to check.
type Target struct {
	Collector  *monitor.Collector
	Thresholds policy.Thresholds
	Ignore     map[string]bool
}

// InstanceResult is the outcome for one instance.
type InstanceResult struct {
	Name     string           `json:"name"`
	Addr     string           `json:"addr"`
	Status   string           `json:"status"`
	Findings []policy.Finding `json:"findings"`
	// Log says where Redis logs, since causes come from there.
	Log      string `json:"log"`
	snapshot monitor.Snapshot
}

// Result is one pass over all instances.
type Result struct {
	Status    string           `json:"status"`
	Instances []InstanceResult `json:"instances"`
}

// Run checks every target concurrently, each bounded by timeout, so a dead Redis
// costs at most the timeout and never delays the others' results. Each is read
// twice, CounterInterval(timeout) apart: counters Redis keeps since its start
// (errorstat_OOM, aof_delayed_fsync, output-buffer disconnections, a cgroup's
// oom_kill) are judged on their change between the two, so a check reports what
// happens now, not rejections that ended before it ran.
func Run(ctx context.Context, targets []Target, timeout time.Duration, now func() time.Time) Result {
	res := Result{Instances: make([]InstanceResult, len(targets))}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			s, h := readTwice(cctx, t.Collector, CounterInterval(timeout), now)
			fs := policy.Diagnose(s, h, t.Thresholds, t.Ignore)
			if fs == nil {
				fs = []policy.Finding{}
			}
			res.Instances[i] = InstanceResult{
				Name: t.Collector.Name(), Addr: t.Collector.Addr(), Status: stateOf(policy.Worst(fs)),
				Findings: fs, Log: describeLogSource(s.Log), snapshot: s,
			}
		}()
	}
	wg.Wait()
	var all []policy.Finding
	for _, in := range res.Instances {
		all = append(all, in.Findings...)
	}
	res.Status = stateOf(policy.Worst(all))
	return res
}

// CounterInterval is how far apart check reads an instance: a second, or a
// quarter of a shorter --timeout, so both reads fit in it.
func CounterInterval(timeout time.Duration) time.Duration {
	return min(time.Second, timeout/4)
}

// readTwice reads an instance, waits interval and reads it again; the first
// reading is the second's history. A Redis that does not answer is not read
// again: there is no counter to compare, and its timeout is spent.
func readTwice(ctx context.Context, c *monitor.Collector, interval time.Duration, now func() time.Time) (monitor.Snapshot, policy.History) {
	first := c.Snapshot(ctx, now())
	if first.Redis.Err != nil {
		return first, policy.History{}
	}
	timer := time.NewTimer(interval)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return first, policy.History{}
	case <-timer.C:
	}
	c.Redis().MarkInfoStale() // errorstats are not in a light read
	s := c.Snapshot(ctx, now())
	if s.Redis.Err != nil {
		return s, policy.History{}
	}
	return s, policy.History{Prev: &first, OneShot: true}
}

func describeLogSource(l monitor.LogReading) string {
	switch l.Source {
	case monitor.LogFile:
		if l.Err != nil {
			return fmt.Sprintf("%s (unreadable: %v)", l.Path, l.Err)
		}
		return l.Path
	case monitor.LogStdout:
		return "stdout (the service manager's journal; causes from log lines are not seen)"
	case monitor.LogSyslog:
		return "syslog (causes from log lines are not seen)"
	case monitor.LogUnavailable:
		return "unavailable (CONFIG GET failed or Redis is not local; set log_file)"
	default:
		return "unknown"
	}
}

func stateOf(s policy.Severity) string {
	switch s {
	case policy.Critical:
		return "CRITICAL"
	case policy.Warning:
		return "WARNING"
	}
	return "OK"
}

// ExitCode maps a status to the plugin exit code.
func ExitCode(status string) int {
	switch status {
	case "OK":
		return OK
	case "WARNING":
		return WARNING
	case "CRITICAL":
		return CRITICAL
	}
	return UNKNOWN
}

// WriteJSON renders the result as JSON.
func WriteJSON(w io.Writer, r Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// WriteText renders the result: the plugin status line first, then findings for a
// person.
func WriteText(w io.Writer, r Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "REDIS-GUARDIAN %s - %s | %s\n", r.Status, summary(r), perfdata(r))
	for _, in := range r.Instances {
		fmt.Fprintf(&b, "\n[%s] %s: %s (log: %s)\n", in.Name, in.Addr, in.Status, in.Log)
		for _, f := range in.Findings {
			fmt.Fprintf(&b, "  %-8s %s: %s\n", strings.ToUpper(string(f.Severity)), f.ID, f.Summary)
			fmt.Fprintf(&b, "           cause:  %s\n", f.Cause)
			fmt.Fprintf(&b, "           fix: %s\n", f.Fix)
		}
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write text: %w", err)
	}
	return nil
}

func summary(r Result) string {
	var parts []string
	for _, in := range r.Instances {
		if len(in.Findings) == 0 {
			parts = append(parts, in.Name+" ok")
			continue
		}
		ids := make([]string, 0, len(in.Findings))
		for _, f := range in.Findings {
			ids = append(ids, f.ID)
		}
		parts = append(parts, in.Name+": "+strings.Join(ids, ", "))
	}
	return fmt.Sprintf("%d instance(s); %s", len(r.Instances), strings.Join(parts, "; "))
}

// perfdata follows the plugin format 'label'=value[UOM];warn;crit;min;max.
func perfdata(r Result) string {
	var p []string
	for _, in := range r.Instances {
		s := in.snapshot
		n := in.Name
		if s.Redis.Err != nil {
			p = append(p, fmt.Sprintf("'%s_up'=0", n))
			continue
		}
		i := s.Redis.Info
		p = append(p,
			fmt.Sprintf("'%s_up'=1", n),
			fmt.Sprintf("'%s_latency'=%.6fs", n, s.Redis.Latency.Seconds()),
			fmt.Sprintf("'%s_used_memory'=%dB;;;0;%s", n, i.UsedMemory, maxOrEmpty(i.MaxMemory)),
			fmt.Sprintf("'%s_fragmentation_ratio'=%.2f", n, i.MemFragmentationRatio),
			fmt.Sprintf("'%s_changes_since_save'=%d", n, i.RDBChangesSinceLastSave),
		)
		if s.Host.Available && s.Host.DataDir.Known {
			p = append(p, fmt.Sprintf("'%s_disk_used'=%.1f%%;;;0;100", n, s.Host.DataDir.UsedPercent))
		}
	}
	return strings.Join(p, " ")
}

func maxOrEmpty(n int64) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprint(n)
}
