// Package supervisor runs the guardian's instances as one service: it starts a
// loop per configured instance, swaps them on reload (a bad new configuration
// keeps the old one running), and owns what ties the loops to systemd and
// Prometheus: the status line, the watchdog, health and the metrics' series.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/internal/metrics"
	"github.com/redis-guardian/redis-guardian/internal/notify"
	"github.com/redis-guardian/redis-guardian/internal/status"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// Options are what the supervisor is built from.
type Options struct {
	// Load reads the configuration again on reload, with the same flag overrides
	// the first one had.
	Load     func() (*config.Config, error)
	Version  string
	Log      *zap.Logger
	Notifier *notify.Notifier
	Metrics  *metrics.Metrics
}

// Supervisor runs one loop per configured instance and swaps them on reload.
type Supervisor struct {
	load     func() (*config.Config, error)
	version  string
	log      *zap.Logger
	notifier *notify.Notifier
	wd       *notify.Watchdog
	metrics  *metrics.Metrics
	host     *monitor.HostSource

	mu     sync.Mutex
	cfg    *config.Config
	insts  map[string]*running
	ready  bool
	status string
}

var _ metrics.Health = (*Supervisor)(nil)

// spec is everything an instance's loop is built from; a reload restarts a loop
// exactly when its spec changed.
type spec struct {
	Instance      config.Instance
	Interval      time.Duration
	ConfigRefresh time.Duration
	Timeouts      config.Timeouts
	Mode          config.Mode
}

func specOf(cfg *config.Config, in config.Instance) spec {
	return spec{Instance: in, Interval: cfg.Interval, ConfigRefresh: cfg.ConfigRefresh, Timeouts: cfg.Timeouts, Mode: cfg.Mode}
}

// running is one instance's loop.
type running struct {
	spec    spec
	timeout time.Duration
	exec    *remediate.Executor
	cancel  context.CancelFunc
	done    chan struct{}
	closeFn func()
	started time.Time
	last    *daemon.TickReport // under Supervisor.mu
}

// New builds a supervisor for cfg.
func New(cfg *config.Config, o Options) *Supervisor {
	return &Supervisor{
		load: o.Load, version: o.Version, log: o.Log, notifier: o.Notifier, wd: notify.NewWatchdog(o.Notifier, nil), metrics: o.Metrics,
		host: monitor.NewHostSource(monitor.HostOptions{}), cfg: cfg, insts: map[string]*running{},
	}
}

// prepare builds an instance's client; its ledger opens in start.
func (s *Supervisor) prepare(cfg *config.Config, in config.Instance) (*instance.Prepared, error) {
	return instance.Prepare(cfg, in, instance.Options{
		Host: s.host, Log: s.log,
		OnEvent:   func(event events.Name, remedy, limit string) { s.metrics.RemedyEvent(in.Name, event, remedy, limit) },
		Report:    s.report,
		Beat:      func() { s.wd.Beat(in.Name) },
		BeatEvery: s.wd.Period(),
	})
}

// start opens the instance's ledger and runs its loop. On error the prepared
// client is closed.
func (s *Supervisor) start(ctx context.Context, cfg *config.Config, p *instance.Prepared) error {
	name := p.Name()
	b, err := p.Open()
	switch {
	case errors.Is(err, remediate.ErrLocked):
		p.Close()
		return fmt.Errorf("%w: is another redis-guardian running on state_dir %s? Stop it first (systemctl stop redis-guardian)", err, cfg.StateDir)
	case err != nil:
		// One bad ledger stops this instance's remedies, not the others: it is
		// still watched, a critical finding names the file, and the file is left
		// exactly as it is.
		s.log.Error("cannot read the ledger: remedies are off for this instance until it is fixed", zap.String("instance", name), zap.Error(err))
		b = p.OpenBlocked(err)
	}
	s.metrics.AddInstance(name, p.Config().Remedies.Enabled())
	s.wd.Register(name)
	ictx, cancel := context.WithCancel(ctx)
	r := &running{spec: specOf(cfg, p.Config()), timeout: p.Timeout(), exec: b.Executor, cancel: cancel, done: make(chan struct{}), closeFn: b.Close, started: time.Now()}
	s.mu.Lock()
	s.insts[name] = r
	s.mu.Unlock()
	go func() {
		defer close(r.done)
		// Run only returns on cancellation: one instance never stops the others.
		if err := b.Loop.Run(ictx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("instance loop ended", zap.String("instance", name), zap.Error(err))
		}
	}()
	return nil
}

// stop ends an instance's loop (its last pass undoes what no longer needs holding)
// and, when restore is set, restores everything it still holds: an instance
// removed from the configuration must leave nothing changed behind.
func (s *Supervisor) stop(name string, restore bool) {
	s.stopWhy(name, restore, "instance removed from the configuration")
}

func (s *Supervisor) stopWhy(name string, restore bool, why string) {
	s.mu.Lock()
	r, ok := s.insts[name]
	s.mu.Unlock()
	if !ok {
		return
	}
	// Unregister first: a stopping loop's final pass and restore must not hold back
	// the watchdog pings the other loops earn.
	s.wd.Unregister(name)
	r.cancel()
	<-r.done
	if restore {
		ctx, cancel := context.WithTimeout(context.Background(), 2*r.timeout+5*time.Second)
		if err := r.exec.RestoreAll(ctx, why); err != nil {
			s.log.Error("could not restore every held change; the ledger keeps them",
				zap.String("instance", name), zap.String("ledger", remediate.LedgerPath(s.cfg.StateDir, name)), zap.Error(err))
		}
		cancel()
	}
	r.closeFn()
	s.metrics.RemoveInstance(name)
	s.mu.Lock()
	delete(s.insts, name)
	s.mu.Unlock()
}

// RestoreOnStopMarker, in the state dir, makes the next stop restore every held
// change instead of keeping those whose reason persists. The package's removal
// script writes it before it stops the service: the daemon, which systemd runs,
// can reach Redis where the package manager's own scriptlets may not (rpm 4.20
// runs them without network), and a removed guardian must leave nothing behind.
const RestoreOnStopMarker = ".restore-on-stop"

func (s *Supervisor) restoreOnStop() bool {
	_, err := os.Stat(filepath.Join(s.cfg.StateDir, RestoreOnStopMarker))
	return err == nil
}

// stopAllRestoring stops every loop and restores what its ledger holds.
func (s *Supervisor) stopAllRestoring(why string) {
	var wg sync.WaitGroup
	for _, name := range s.names() {
		wg.Add(1)
		go func() { defer wg.Done(); s.stopWhy(name, true, why) }()
	}
	wg.Wait()
}

func (s *Supervisor) stopAll() {
	var wg sync.WaitGroup
	for _, name := range s.names() {
		wg.Add(1)
		go func() { defer wg.Done(); s.stop(name, false) }()
	}
	wg.Wait()
}

func (s *Supervisor) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.insts))
	for n := range s.insts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run starts every instance, says READY, then serves reload requests until ctx is
// cancelled, when it stops every loop.
func (s *Supervisor) Run(ctx context.Context, reload <-chan struct{}) error {
	var preps []*instance.Prepared
	for _, in := range s.cfg.Instances {
		p, err := s.prepare(s.cfg, in)
		if err != nil {
			for _, p := range preps {
				p.Close()
			}
			return err
		}
		preps = append(preps, p)
	}
	for i, p := range preps {
		if err := s.start(ctx, s.cfg, p); err != nil {
			for _, p := range preps[i+1:] {
				p.Close()
			}
			s.stopAll()
			return err
		}
	}
	s.warnOrphanLedgers()
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	s.log.Info("started", events.Field(events.Started), zap.String("version", s.version), zap.Int("instances", len(s.cfg.Instances)),
		zap.String("mode", string(s.cfg.Mode)), zap.Duration("interval", s.cfg.Interval), zap.String("state_dir", s.cfg.StateDir),
		zap.String("metrics_listen", s.cfg.MetricsListen), zap.Duration("watchdog", s.notifier.WatchdogInterval()))
	s.notify(s.notifier.Ready(s.statusLine()))
	for {
		select {
		case <-ctx.Done():
			if s.restoreOnStop() {
				s.notify(s.notifier.Stopping("stopping for package removal: restoring every held change"))
				s.log.Warn("the package is being removed ("+RestoreOnStopMarker+" in the state dir): restoring every held change before stopping",
					events.Field(events.Stopping))
				s.stopAllRestoring("redis-guardian is being removed")
				return nil
			}
			s.notify(s.notifier.Stopping("stopping: undoing what no longer needs holding"))
			s.stopAll()
			return nil
		case <-reload:
			s.reload(ctx)
		}
	}
}

// warnOrphanLedgers names held changes of instances no longer configured: nothing
// reconciles them, so an operator must restore them (add the instance back and run
// `redis-guardian restore`) or decide they are gone.
func (s *Supervisor) warnOrphanLedgers() {
	if s.cfg.Mode == config.ModeDryRun {
		return
	}
	paths, err := filepath.Glob(filepath.Join(s.cfg.StateDir, "*.ledger.json"))
	if err != nil {
		return
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".ledger.json")
		s.mu.Lock()
		_, ok := s.insts[name]
		s.mu.Unlock()
		if ok {
			continue
		}
		s.log.Warn("a ledger of held changes belongs to an instance that is not in the configuration: nothing will restore them; add the instance back and run redis-guardian restore, or remove the file once the settings are checked",
			zap.String("ledger", p), zap.String("instance_unconfigured", name))
	}
}

// reload reads the configuration again. A bad file changes nothing; a good one
// starts added instances, stops removed ones (restoring what they held) and
// restarts changed ones. Unchanged instances keep running undisturbed.
func (s *Supervisor) reload(ctx context.Context) {
	s.notify(s.notifier.Reloading())
	defer func() { s.notify(s.notifier.Ready(s.statusLine())) }()
	cfg, err := s.load()
	if err == nil && cfg.StateDir != s.cfg.StateDir {
		err = fmt.Errorf("state_dir: changed from %s to %s; the ledger cannot move while the guardian runs: restart it instead", s.cfg.StateDir, cfg.StateDir)
	}
	if err != nil {
		s.metrics.Reloaded(false)
		s.log.Error("reload failed, keeping the running configuration", events.Field(events.ReloadFailed), zap.Error(err))
		return
	}
	if cfg.MetricsListen != s.cfg.MetricsListen {
		s.log.Warn("metrics_listen changed; it takes effect at the next restart", zap.String("running", s.cfg.MetricsListen), zap.String("configured", cfg.MetricsListen))
	}
	want := map[string]config.Instance{}
	for _, in := range cfg.Instances {
		want[in.Name] = in
	}
	var added, removed, changed []string
	var preps []*instance.Prepared
	for _, in := range cfg.Instances {
		s.mu.Lock()
		r, ok := s.insts[in.Name]
		s.mu.Unlock()
		if ok && reflect.DeepEqual(r.spec, specOf(cfg, in)) {
			continue
		}
		p, err := s.prepare(cfg, in)
		if err != nil {
			for _, p := range preps {
				p.Close()
			}
			s.metrics.Reloaded(false)
			s.log.Error("reload failed, keeping the running configuration", events.Field(events.ReloadFailed), zap.Error(err))
			return
		}
		preps = append(preps, p)
		if ok {
			changed = append(changed, in.Name)
		} else {
			added = append(added, in.Name)
		}
	}
	for _, name := range s.names() {
		if _, ok := want[name]; !ok {
			removed = append(removed, name)
			s.stop(name, true)
		}
	}
	for _, name := range changed {
		s.stop(name, false)
	}
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	var failed []error
	for _, p := range preps {
		if err := s.start(ctx, cfg, p); err != nil {
			failed = append(failed, err)
		}
	}
	if err := errors.Join(failed...); err != nil {
		s.metrics.Reloaded(false)
		s.log.Error("reload: some instances could not start", events.Field(events.ReloadFailed), zap.Error(err))
		return
	}
	s.metrics.Reloaded(true)
	s.log.Info(fmt.Sprintf("reloaded the configuration: %d instance(s), %d added, %d removed, %d restarted", len(cfg.Instances), len(added), len(removed), len(changed)),
		events.Field(events.Reloaded), zap.Strings("added", added), zap.Strings("removed", removed), zap.Strings("restarted", changed))
}

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
		r := reports[i]
		switch {
		case r == nil:
			parts[i] = n + " starting"
		case !r.Up:
			parts[i] = n + " unreachable"
		case len(r.Findings) == 0 && len(r.Held) == 0:
			parts[i] = n + " ok"
		default:
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
			parts[i] = n + " " + strings.Join(what, ", ")
		}
	}
	noun := "instances"
	if len(names) == 1 {
		noun = "instance"
	}
	return fmt.Sprintf("%d %s: %s", len(names), noun, strings.Join(parts, "; "))
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
		si := status.Instance{Name: name, Addr: in.exec.Addr, Findings: []status.Finding{}, Held: status.FromChanges(in.exec.Changes(), now)}
		if last := in.last; last != nil {
			up, end := last.Up, last.Start.Add(last.Duration)
			si.Up, si.LastTick, si.Findings = &up, &end, status.FromFindings(last.Findings)
		}
		r.Instances = append(r.Instances, si)
	}
	r.Sort()
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
