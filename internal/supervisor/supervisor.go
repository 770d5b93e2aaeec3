// Package supervisor runs the guardian's instances as one service: it starts a
// loop per configured instance, swaps them on reload (a bad new configuration
// keeps the old one running), and owns what ties the loops to systemd and
// Prometheus: the status line, the watchdog, health and the metrics' series.
//
// By job: lifecycle.go starts and stops the loops, reload.go applies a new
// configuration, status.go is the status line, health and `status`, marker.go the
// restore-on-stop marker of a package removal, restore.go `redis-guardian restore`.
package supervisor

import (
	"context"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/internal/metrics"
	"github.com/redis-guardian/redis-guardian/internal/notify"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
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
	// peers is where the instances share their Redis's memory (oom_relief).
	peers *instance.Peers

	mu     sync.Mutex
	cfg    *config.Config
	insts  map[string]*running
	ready  bool
	status string
}

var _ metrics.Health = (*Supervisor)(nil)

// running is one instance's loop.
type running struct {
	spec    spec
	timeout time.Duration
	built   *instance.Built
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time
	last    *daemon.TickReport // under Supervisor.mu
}

// New builds a supervisor for cfg.
func New(cfg *config.Config, o Options) *Supervisor {
	return &Supervisor{
		load: o.Load, version: o.Version, log: o.Log, notifier: o.Notifier, wd: notify.NewWatchdog(o.Notifier, nil), metrics: o.Metrics,
		host: monitor.NewHostSource(monitor.HostOptions{}), peers: instance.NewPeers(), cfg: cfg, insts: map[string]*running{},
	}
}

// get returns the running instance of that name, nil if there is none.
func (s *Supervisor) get(name string) *running {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.insts[name]
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
