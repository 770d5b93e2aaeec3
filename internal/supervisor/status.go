package supervisor

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/status"
)

// report receives every completed tick: metrics, and the status line when it changed.
func (s *Supervisor) report(r daemon.TickReport) {
	s.metrics.Tick(r)
	s.mu.Lock()
	if in, ok := s.insts[r.Instance]; ok {
		in.last = &r
	}
	s.mu.Unlock()
	line := s.statusLine()
	s.mu.Lock()
	changed := line != s.status
	s.status = line
	s.mu.Unlock()
	if changed {
		s.notify(s.notifier.Status(line))
	}
}

func (s *Supervisor) notify(err error) {
	if err != nil {
		s.log.Warn("cannot notify systemd", zap.Error(err))
	}
}

func (s *Supervisor) statusLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.insts))
	for n := range s.insts {
		names = append(names, n)
	}
	sort.Strings(names)
	reports := make([]*daemon.TickReport, len(names))
	for i, n := range names {
		reports[i] = s.insts[n].last
	}
	return statusLine(names, reports, time.Now())
}

// statusLine summarises every instance in one line for `systemctl status`, e.g.
// "2 instances: main ok; cache misconf_rdb, holding stop-writes-on-bgsave-error=no 3m".
func statusLine(names []string, reports []*daemon.TickReport, now time.Time) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + instanceStatus(reports[i], now)
	}
	noun := "instances"
	if len(names) == 1 {
		noun = "instance"
	}
	return fmt.Sprintf("%d %s: %s", len(names), noun, strings.Join(parts, "; "))
}

// instanceStatus is one instance's part of the status line.
func instanceStatus(r *daemon.TickReport, now time.Time) string {
	switch {
	case r == nil:
		return "starting"
	case !r.Up:
		return "unreachable"
	case len(r.Findings) == 0 && len(r.Held) == 0:
		return "ok"
	}
	var what []string
	if len(r.Findings) > 0 {
		ids := make([]string, 0, 3)
		for _, f := range r.Findings {
			if len(ids) == 2 {
				ids = append(ids, fmt.Sprintf("+%d", len(r.Findings)-2))
				break
			}
			ids = append(ids, f.ID)
		}
		what = append(what, strings.Join(ids, ", "))
	}
	for _, h := range r.Held {
		what = append(what, fmt.Sprintf("holding %s=%s %s", h.Setting, h.Value, roughly(now.Sub(h.Time))))
	}
	return strings.Join(what, ", ")
}

// roughly renders a duration coarsely, so the status line changes rarely.
func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "<1m"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// Healthy reports whether every loop completes ticks: the guardian's own liveness,
// not Redis's health (a down Redis still completes ticks).
func (s *Supervisor) Healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var errs []error
	for name, r := range s.insts {
		last := r.started
		if r.last != nil {
			last = r.last.Start.Add(r.last.Duration)
		}
		limit := 3*r.spec.Interval + 2*r.timeout + 5*time.Second
		if age := now.Sub(last); age > limit {
			errs = append(errs, fmt.Errorf("instance %s: no completed tick for %s", name, age.Round(time.Second)))
		}
	}
	return errors.Join(errs...)
}

// Status is what `redis-guardian status` shows of the running guardian: per
// instance its last tick, active findings and held changes.
func (s *Supervisor) Status() status.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	r := status.Report{Source: "daemon", Version: s.version, Time: now}
	for name, in := range s.insts {
		exec := in.built.Executor
		si := status.Instance{Name: name, Addr: exec.Addr, Findings: []status.Finding{}, Held: status.FromChanges(exec.Changes(), now),
			Yielded: status.FromYields(exec.Yields())}
		if last := in.last; last != nil {
			up, end := last.Up, last.Start.Add(last.Duration)
			si.Up, si.LastTick, si.Findings = &up, &end, status.FromFindings(last.Findings)
			si.ForkSlot = last.Fork.Mine
		}
		r.Instances = append(r.Instances, si)
	}
	r.Sort()
	if n := s.cfg.ForkSlots(); n > 0 {
		r.Fork = status.ReadForkSlots(s.cfg.RuntimeDir, n)
	}
	return r
}

// Ready reports whether start-up is complete.
func (s *Supervisor) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return errors.New("starting")
	}
	return nil
}
