package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/metrics"
	"github.com/redis-guardian/redis-guardian/internal/notify"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// Event names the service logs itself (the loops and the executor log the rest).
const (
	eventStarted      = "started"
	eventStopping     = "stopping"
	eventReloaded     = "reloaded"
	eventReloadFailed = "reload_failed"
)

// service runs one loop per configured instance and swaps them on reload. It owns
// what ties the loops to systemd and Prometheus: status line, watchdog, metrics.
type service struct {
	flags    commonFlags // reload reads the file again with the same flag overrides
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
	last    *daemon.TickReport // under service.mu
}

// prepared is an instance whose client is built but whose loop has not started:
// a reload builds every new one first, so a bad one changes nothing.
type prepared struct {
	spec    spec
	timeout time.Duration
	col     *monitor.Collector
	closeFn func()
}

func newService(cfg *config.Config, flags commonFlags, log *zap.Logger, n *notify.Notifier, m *metrics.Metrics) *service {
	return &service{
		flags: flags, log: log, notifier: n, wd: notify.NewWatchdog(n, nil), metrics: m,
		host: monitor.NewHostSource(monitor.HostOptions{}), cfg: cfg, insts: map[string]*running{},
	}
}

func (s *service) prepare(cfg *config.Config, in config.Instance) (*prepared, error) {
	timeout := max(cfg.Interval, time.Second)
	col, closeFn, err := newCollector(cfg, in, s.host, timeout)
	if err != nil {
		return nil, err
	}
	return &prepared{spec: specOf(cfg, in), timeout: timeout, col: col, closeFn: closeFn}, nil
}

// start opens the instance's ledger and runs its loop. On error the prepared
// client is closed.
func (s *service) start(ctx context.Context, cfg *config.Config, p *prepared) error {
	in := p.spec.Instance
	ledger, err := openLedger(cfg, in.Name)
	if err != nil {
		p.closeFn()
		return fmt.Errorf("instance %s: %w", in.Name, err)
	}
	ilog := s.log.With(zap.String("instance", in.Name), zap.String("addr", monitor.RedactAddr(in.Addr)))
	exec := &remediate.Executor{
		Instance: in.Name, Addr: monitor.RedactAddr(in.Addr), Client: p.col.Redis().Client(), ConfigCommand: in.ConfigCommand,
		Ledger: ledger, DryRun: cfg.Mode == config.ModeDryRun, Log: ilog.Named("remediate"), Now: time.Now,
		OnEvent: func(event, remedy string) { s.metrics.RemedyEvent(in.Name, event, remedy) },
	}
	s.metrics.AddInstance(in.Name, enabledRemedies(in.Remedies))
	s.wd.Register(in.Name)
	inst := &daemon.Instance{
		Collector: p.col, Executor: exec, Thresholds: in.Thresholds, Remedies: in.Remedies, Ignore: in.IgnoreSet(),
		Interval: cfg.Interval, Timeout: p.timeout, Log: ilog,
		Report:    s.report,
		Beat:      func() { s.wd.Beat(in.Name) },
		BeatEvery: s.wd.Period(),
	}
	ictx, cancel := context.WithCancel(ctx)
	r := &running{spec: p.spec, timeout: p.timeout, exec: exec, cancel: cancel, done: make(chan struct{}), closeFn: p.closeFn, started: time.Now()}
	s.mu.Lock()
	s.insts[in.Name] = r
	s.mu.Unlock()
	go func() {
		defer close(r.done)
		// Run only returns on cancellation: one instance never stops the others.
		if err := inst.Run(ictx); err != nil && !errors.Is(err, context.Canceled) {
			ilog.Error("instance loop ended", zap.Error(err))
		}
	}()
	return nil
}

// stop ends an instance's loop (its last pass undoes what no longer needs holding)
// and, when restore is set, restores everything it still holds: an instance
// removed from the configuration must leave nothing changed behind.
func (s *service) stop(name string, restore bool) {
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
		if err := r.exec.RestoreAll(ctx, "instance removed from the configuration"); err != nil {
			s.log.Error("could not restore every held change of a removed instance; its ledger keeps them",
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

func (s *service) stopAll() {
	var wg sync.WaitGroup
	for _, name := range s.names() {
		wg.Add(1)
		go func() { defer wg.Done(); s.stop(name, false) }()
	}
	wg.Wait()
}

func (s *service) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.insts))
	for n := range s.insts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// run starts every instance, says READY, then serves reload requests until ctx is
// cancelled, when it stops every loop.
func (s *service) run(ctx context.Context, reload <-chan struct{}) error {
	var preps []*prepared
	for _, in := range s.cfg.Instances {
		p, err := s.prepare(s.cfg, in)
		if err != nil {
			for _, p := range preps {
				p.closeFn()
			}
			return err
		}
		preps = append(preps, p)
	}
	for i, p := range preps {
		if err := s.start(ctx, s.cfg, p); err != nil {
			for _, p := range preps[i+1:] {
				p.closeFn()
			}
			s.stopAll()
			return err
		}
	}
	s.warnOrphanLedgers()
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	s.log.Info("started", zap.String("event", eventStarted), zap.String("version", Version), zap.Int("instances", len(s.cfg.Instances)),
		zap.String("mode", string(s.cfg.Mode)), zap.Duration("interval", s.cfg.Interval), zap.String("state_dir", s.cfg.StateDir),
		zap.String("metrics_listen", s.cfg.MetricsListen), zap.Duration("watchdog", s.notifier.WatchdogInterval()))
	s.notify(s.notifier.Ready(s.statusLine()))
	for {
		select {
		case <-ctx.Done():
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
func (s *service) warnOrphanLedgers() {
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
func (s *service) reload(ctx context.Context) {
	s.notify(s.notifier.Reloading())
	defer func() { s.notify(s.notifier.Ready(s.statusLine())) }()
	cfg, err := loadConfig(s.flags, warnLog{s.log})
	if err == nil && cfg.StateDir != s.cfg.StateDir {
		err = fmt.Errorf("state_dir: changed from %s to %s; the ledger cannot move while the guardian runs: restart it instead", s.cfg.StateDir, cfg.StateDir)
	}
	if err != nil {
		s.metrics.Reloaded(false)
		s.log.Error("reload failed, keeping the running configuration", zap.String("event", eventReloadFailed), zap.Error(err))
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
	var preps []*prepared
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
				p.closeFn()
			}
			s.metrics.Reloaded(false)
			s.log.Error("reload failed, keeping the running configuration", zap.String("event", eventReloadFailed), zap.Error(err))
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
		s.log.Error("reload: some instances could not start", zap.String("event", eventReloadFailed), zap.Error(err))
		return
	}
	s.metrics.Reloaded(true)
	s.log.Info(fmt.Sprintf("reloaded the configuration: %d instance(s), %d added, %d removed, %d restarted", len(cfg.Instances), len(added), len(removed), len(changed)),
		zap.String("event", eventReloaded), zap.Strings("added", added), zap.Strings("removed", removed), zap.Strings("restarted", changed))
}

// report receives every completed tick: metrics, and the status line when it changed.
func (s *service) report(r daemon.TickReport) {
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

func (s *service) notify(err error) {
	if err != nil {
		s.log.Warn("cannot notify systemd", zap.Error(err))
	}
}

func (s *service) statusLine() string {
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
func (s *service) Healthy() error {
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

// Ready reports whether start-up is complete.
func (s *service) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return errors.New("starting")
	}
	return nil
}

var _ metrics.Health = (*service)(nil)

func enabledRemedies(r policy.Remedies) []string {
	var out []string
	if r.StopWrites.Enabled {
		out = append(out, policy.RemedyStopWrites)
	}
	if r.BgsaveRetry.Enabled {
		out = append(out, policy.RemedyBgsaveRetry)
	}
	if r.RewriteDeferral.Enabled {
		out = append(out, policy.RemedyRewriteDeferral)
	}
	if r.TempCleanup.Enabled {
		out = append(out, policy.RemedyTempCleanup)
	}
	return out
}

// warnLog turns config warnings met on reload into log lines (at start-up
// they go to stderr before the logger exists).
type warnLog struct{ log *zap.Logger }

func (d warnLog) Write(p []byte) (int, error) {
	d.log.Warn(strings.TrimSpace(strings.TrimPrefix(string(p), "redis-guardian: warning: ")))
	return len(p), nil
}
