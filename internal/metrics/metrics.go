// Package metrics exposes what the guardian sees and does as Prometheus metrics, on
// a private registry (nothing registered by an imported library leaks in), with
// labels drawn only from bounded sets: instance names from the config, finding ids,
// severities and remedy names. Never an error string.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// Metrics holds the guardian's collectors and the little state needed to turn tick
// reports into them.
type Metrics struct {
	Registry *prometheus.Registry

	up             *prometheus.GaugeVec
	findings       *prometheus.GaugeVec
	remedies       map[events.Name]*prometheus.CounterVec
	suppressed     *prometheus.CounterVec
	held           *prometheus.GaugeVec
	heldSince      *prometheus.GaugeVec
	rejected       *prometheus.CounterVec
	tickDuration   *prometheus.HistogramVec
	lastTick       *prometheus.GaugeVec
	reloadOK       prometheus.Gauge
	reloadTime     prometheus.Gauge
	reloadsTotal   *prometheus.CounterVec
	instancesTotal prometheus.Gauge
	forkHeld       *prometheus.GaugeVec
	forkBusy       *prometheus.GaugeVec
	forkSlots      *prometheus.GaugeVec
	forkWaiters    *prometheus.GaugeVec

	mu   sync.Mutex
	last map[string]instState
}

type instState struct {
	end      time.Time
	rejected bool
	findings map[[2]string]bool
}

// remedyCounters are the executor events counted, each as its own _total counter.
var remedyCounters = map[events.Name]struct{ name, help string }{
	events.RemedyApplied: {"remedies_applied_total", "Remedies carried out (settings changed, BGSAVE/BGREWRITEAOF started, temp files removed, clients disconnected), by remedy."},
	events.RemedyUndone:  {"remedies_undone_total", "Held settings the guardian restored, by remedy."},
	events.RemedyFailed:  {"remedies_failed_total", "Remedies that failed (ACL denied, renamed command, Redis gone), by remedy."},
	events.RemedyYielded: {"remedies_yielded_total", "Held settings abandoned because someone else changed them, by remedy."},
}

// New builds the metrics for a guardian of the given version.
func New(version string) *Metrics {
	const ns = "redis_guardian"
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "instance_up",
			Help: "1 when the last tick could read the Redis instance, 0 when it was unreachable."}, []string{"instance"}),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "findings_active",
			Help: "1 for each finding raised on an instance at its last tick."}, []string{"instance", "finding", "severity"}),
		remedies: map[events.Name]*prometheus.CounterVec{},
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "remedies_suppressed_total",
			Help: "Remedies a limit held back (reason: max_per_hour or backoff), once per episode, by remedy."}, []string{"instance", "remedy", "reason"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "held_changes",
			Help: "Settings the guardian currently holds changed (recorded in its ledger)."}, []string{"instance"}),
		heldSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "held_change_oldest_timestamp_seconds",
			Help: "Unix time the oldest held change was made, 0 when nothing is held (its age: time() - this, where > 0)."}, []string{"instance"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "writes_rejected_seconds_total",
			Help: "Time between consecutive ticks that both saw Redis rejecting writes (MISCONF); a lower bound."}, []string{"instance"}),
		tickDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "tick_duration_seconds",
			Help:    "Time one tick took: read, diagnose, decide, act.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"instance"}),
		lastTick: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "last_tick_timestamp_seconds",
			Help: "Unix time the instance's last tick completed."}, []string{"instance"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "config_last_reload_successful",
			Help: "1 when the last configuration reload succeeded (or none was tried), 0 when the old configuration was kept."}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Unix time the configuration was last loaded successfully."}),
		reloadsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
			Help: "Configuration reloads by result (ok, failed)."}, []string{"result"}),
		instancesTotal: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "instances",
			Help: "Redis instances being watched."}),
		forkHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "fork_slot_held",
			Help: "1 while the instance holds one of the host's fork slots (fork_budget: its fork child runs, or is about to)."}, []string{"instance"}),
		forkBusy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "fork_slots_busy",
			Help: "The host's fork slots held by any instance of any guardian, as the instance's last tick saw them."}, []string{"instance"}),
		forkSlots: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "fork_slots",
			Help: "The host's fork slots (fork_budget.max_concurrent) as the instance uses them; 0 when they could not be read."}, []string{"instance"}),
		forkWaiters: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "fork_waiters",
			Help: "The host's instances whose due save waits for a fork slot (this one included), as the instance's last tick saw them."}, []string{"instance"}),
		last: map[string]instState{},
	}
	for ev, c := range remedyCounters {
		m.remedies[ev] = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: c.name, Help: c.help}, []string{"instance", "remedy"})
		m.Registry.MustRegister(m.remedies[ev])
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1; the labels say which build runs."}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
	for _, r := range []string{"ok", "failed"} {
		m.reloadsTotal.WithLabelValues(r)
	}
	m.Registry.MustRegister(m.up, m.findings, m.suppressed, m.held, m.heldSince, m.rejected, m.tickDuration, m.lastTick,
		m.reloadOK, m.reloadTime, m.reloadsTotal, m.instancesTotal, build,
		m.forkHeld, m.forkBusy, m.forkSlots, m.forkWaiters,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// AddInstance makes an instance's series exist from its start, so rates and
// alerts see zeros rather than absent series.
func (m *Metrics) AddInstance(name string, remedies []string) {
	m.up.WithLabelValues(name)
	m.held.WithLabelValues(name)
	m.heldSince.WithLabelValues(name)
	m.rejected.WithLabelValues(name)
	m.forkHeld.WithLabelValues(name)
	m.forkBusy.WithLabelValues(name)
	m.forkSlots.WithLabelValues(name)
	m.forkWaiters.WithLabelValues(name)
	for _, r := range remedies {
		for _, c := range m.remedies {
			c.WithLabelValues(name, r)
		}
		for _, why := range policy.SuppressionReasons {
			m.suppressed.WithLabelValues(name, r, why)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.instancesTotal.Set(float64(len(m.last) + 1))
	m.last[name] = instState{}
}

// RemoveInstance drops every series of an instance no longer watched.
func (m *Metrics) RemoveInstance(name string) {
	l := prometheus.Labels{"instance": name}
	m.up.DeletePartialMatch(l)
	m.findings.DeletePartialMatch(l)
	m.held.DeletePartialMatch(l)
	m.heldSince.DeletePartialMatch(l)
	m.suppressed.DeletePartialMatch(l)
	m.rejected.DeletePartialMatch(l)
	m.forkHeld.DeletePartialMatch(l)
	m.forkBusy.DeletePartialMatch(l)
	m.forkSlots.DeletePartialMatch(l)
	m.forkWaiters.DeletePartialMatch(l)
	m.tickDuration.DeletePartialMatch(l)
	m.lastTick.DeletePartialMatch(l)
	for _, c := range m.remedies {
		c.DeletePartialMatch(l)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.last, name)
	m.instancesTotal.Set(float64(len(m.last)))
}

// RemedyEvent counts one executor event (wire it to remediate.Executor.OnEvent);
// limit names the limit of a suppression.
func (m *Metrics) RemedyEvent(instance string, event events.Name, remedy, limit string) {
	if event == events.RemedySuppressed {
		m.suppressed.WithLabelValues(instance, remedy, limit).Inc()
		return
	}
	if c, ok := m.remedies[event]; ok {
		c.WithLabelValues(instance, remedy).Inc()
	}
}

// Tick records one completed tick.
func (m *Metrics) Tick(r daemon.TickReport) {
	end := r.Start.Add(r.Duration)
	up := 0.0
	if r.Up {
		up = 1
	}
	m.up.WithLabelValues(r.Instance).Set(up)
	m.held.WithLabelValues(r.Instance).Set(float64(len(r.Held)))
	oldest := 0.0
	for _, c := range r.Held {
		if t := float64(c.Time.UnixNano()) / 1e9; oldest == 0 || t < oldest {
			oldest = t
		}
	}
	m.heldSince.WithLabelValues(r.Instance).Set(oldest)
	m.fork(r)
	m.tickDuration.WithLabelValues(r.Instance).Observe(r.Duration.Seconds())
	m.lastTick.WithLabelValues(r.Instance).Set(float64(end.UnixNano()) / 1e9)

	cur := make(map[[2]string]bool, len(r.Findings))
	for _, f := range r.Findings {
		k := [2]string{f.ID, string(f.Severity)}
		cur[k] = true
		m.findings.WithLabelValues(r.Instance, k[0], k[1]).Set(1)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, known := m.last[r.Instance]
	if !known {
		return // removed while this tick ran
	}
	for k := range prev.findings {
		if !cur[k] {
			m.findings.DeleteLabelValues(r.Instance, k[0], k[1])
		}
	}
	if r.WritesRejected && prev.rejected && !prev.end.IsZero() {
		m.rejected.WithLabelValues(r.Instance).Add(end.Sub(prev.end).Seconds())
	}
	m.last[r.Instance] = instState{end: end, rejected: r.WritesRejected, findings: cur}
}

// fork records the host's fork slots as the tick saw them; slots it could not
// read show as 0 slots, none busy.
func (m *Metrics) fork(r daemon.TickReport) {
	v := r.Fork
	held, busy, slots, waiters := 0.0, 0.0, 0.0, 0.0
	if v.Known {
		slots, busy, waiters = float64(v.Slots), float64(v.Slots-v.Free()), float64(len(v.Waiters))
		if v.Mine {
			held = 1
		}
		if !v.Waiting.IsZero() {
			waiters++
		}
	}
	m.forkWaiters.WithLabelValues(r.Instance).Set(waiters)
	m.forkHeld.WithLabelValues(r.Instance).Set(held)
	m.forkBusy.WithLabelValues(r.Instance).Set(busy)
	m.forkSlots.WithLabelValues(r.Instance).Set(slots)
}

// Reloaded records a configuration reload's result.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloadOK.Set(1)
		m.reloadTime.SetToCurrentTime()
		m.reloadsTotal.WithLabelValues("ok").Inc()
		return
	}
	m.reloadOK.Set(0)
	m.reloadsTotal.WithLabelValues("failed").Inc()
}
