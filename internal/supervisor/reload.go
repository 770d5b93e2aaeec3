package supervisor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

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

// diff is what a reload changes: the new and changed instances, prepared (their
// clients built, nothing running yet), and the names of those removed.
type diff struct {
	preps                   []*instance.Prepared
	added, changed, removed []string
}

// reload reads the configuration again. A bad file changes nothing; a good one
// stops removed instances (restoring what they held), starts added ones and
// replaces changed ones. A changed instance whose new start fails keeps its old
// loop running, and the log says so. Unchanged instances keep running undisturbed.
func (s *Supervisor) reload(ctx context.Context) {
	s.notify(s.notifier.Reloading())
	defer func() { s.notify(s.notifier.Ready(s.statusLine())) }()
	cfg, err := s.loadNew()
	if err != nil {
		s.reloadFailed("reload failed, keeping the running configuration", err)
		return
	}
	if cfg.MetricsListen != s.cfg.MetricsListen {
		s.log.Warn("metrics_listen changed; it takes effect at the next restart", zap.String("running", s.cfg.MetricsListen), zap.String("configured", cfg.MetricsListen))
	}
	d, err := s.diff(cfg)
	if err != nil {
		s.reloadFailed("reload failed, keeping the running configuration", err)
		return
	}
	for _, name := range d.removed {
		s.stop(name, true)
	}
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	var failed []error
	for _, p := range d.preps {
		if err := s.apply(ctx, cfg, p); err != nil {
			failed = append(failed, err)
		}
	}
	if err := errors.Join(failed...); err != nil {
		s.reloadFailed("reload: some instances could not start", err)
		return
	}
	s.metrics.Reloaded(true)
	s.log.Info(fmt.Sprintf("reloaded the configuration: %d instance(s), %d added, %d removed, %d restarted", len(cfg.Instances), len(d.added), len(d.removed), len(d.changed)),
		events.Field(events.Reloaded), zap.Strings("added", d.added), zap.Strings("removed", d.removed), zap.Strings("restarted", d.changed))
}

// loadNew reads the configuration and refuses what cannot change while running.
func (s *Supervisor) loadNew() (*config.Config, error) {
	cfg, err := s.load()
	if err != nil {
		return nil, err
	}
	if cfg.StateDir != s.cfg.StateDir {
		return nil, fmt.Errorf("state_dir: changed from %s to %s; the ledger cannot move while the guardian runs: restart it instead", s.cfg.StateDir, cfg.StateDir)
	}
	return cfg, nil
}

func (s *Supervisor) reloadFailed(msg string, err error) {
	s.metrics.Reloaded(false)
	s.log.Error(msg, events.Field(events.ReloadFailed), zap.Error(err))
}

// diff prepares every instance of cfg that is new or whose spec changed, and
// names the running ones cfg no longer has. A client that cannot be built fails
// the whole reload before anything is stopped.
func (s *Supervisor) diff(cfg *config.Config) (diff, error) {
	var d diff
	want := map[string]bool{}
	for _, in := range cfg.Instances {
		want[in.Name] = true
		r := s.get(in.Name)
		if r != nil && reflect.DeepEqual(r.spec, specOf(cfg, in)) {
			continue
		}
		p, err := s.prepare(cfg, in)
		if err != nil {
			for _, p := range d.preps {
				p.Close()
			}
			return diff{}, err
		}
		d.preps = append(d.preps, p)
		if r != nil {
			d.changed = append(d.changed, in.Name)
		} else {
			d.added = append(d.added, in.Name)
		}
	}
	for _, name := range s.names() {
		if !want[name] {
			d.removed = append(d.removed, name)
		}
	}
	return d, nil
}

// apply starts a prepared instance, or replaces the running one of its name.
func (s *Supervisor) apply(ctx context.Context, cfg *config.Config, p *instance.Prepared) error {
	if old := s.get(p.Name()); old != nil {
		return s.replace(ctx, cfg, p, old)
	}
	return s.start(ctx, cfg, p)
}

// replace swaps a changed instance's loop for one built from its new
// configuration. The new one is complete before the old one stops: an enforcing
// instance takes over its predecessor's ledger as it is (and so its lock, which
// another process could take if it were let go), any other opens its own first.
// A start that fails (another process holds the ledger a dry-run instance now
// needs) leaves the old loop running on its old configuration, and the next
// reload tries again.
func (s *Supervisor) replace(ctx context.Context, cfg *config.Config, p *instance.Prepared, old *running) error {
	name := p.Name()
	_, onFile := old.built.Ledger.(*remediate.FileLedger)
	adopt := onFile && cfg.Mode != config.ModeDryRun
	var b *instance.Built
	if adopt {
		b = p.Adopt(old.built.Ledger)
	} else {
		var err error
		if b, err = s.open(cfg, p); err != nil {
			p.Close()
			s.log.Error("reload: the instance's new configuration could not start; the old one keeps running", zap.String("instance", name), zap.Error(err))
			return err
		}
	}
	s.halt(name, old)
	if adopt {
		// The new loop owns the ledger now: the old one closes everything else it
		// has (client and whatever Built.Close grows to release), not the ledger.
		old.built.Ledger = remediate.NewMemLedger()
	}
	old.built.Close()
	s.forget(name)
	s.run(ctx, cfg, b)
	return nil
}
