package supervisor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// Run starts every instance, says READY, then serves reload requests until ctx is
// cancelled, when it stops every loop.
func (s *Supervisor) Run(ctx context.Context, reload <-chan struct{}) error {
	if err := s.startAll(ctx); err != nil {
		return err
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
				s.stopForRemoval()
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

// startAll prepares every configured instance, then starts them: a client that
// cannot be built starts nothing.
func (s *Supervisor) startAll(ctx context.Context) error {
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
	return nil
}

// prepare builds an instance's client; its ledger opens in open.
func (s *Supervisor) prepare(cfg *config.Config, in config.Instance) (*instance.Prepared, error) {
	return instance.Prepare(cfg, in, instance.Options{
		Host: s.host, Peers: s.peers, Log: s.log,
		OnEvent:   func(event events.Name, remedy, limit string) { s.metrics.RemedyEvent(in.Name, event, remedy, limit) },
		Report:    s.report,
		Beat:      func() { s.wd.Beat(in.Name) },
		BeatEvery: s.wd.Period(),
	})
}

// open opens a prepared instance's ledger. A ledger another process holds is an
// error: two writers would lose each other's updates. Any other ledger that cannot
// be used stops this instance's remedies, not the others: it is still watched, a
// critical finding names the file, and the file is left exactly as it is.
func (s *Supervisor) open(cfg *config.Config, p *instance.Prepared) (*instance.Built, error) {
	b, err := p.Open()
	switch {
	case errors.Is(err, remediate.ErrLocked):
		return nil, fmt.Errorf("%w: is another redis-guardian running on state_dir %s? Stop it first (systemctl stop redis-guardian)", err, cfg.StateDir)
	case err != nil:
		s.log.Error("cannot read the ledger: remedies are off for this instance until it is fixed", zap.String("instance", p.Name()), zap.Error(err))
		return p.OpenBlocked(err), nil
	}
	return b, nil
}

// start opens the instance's ledger and runs its loop. On error the prepared
// client is closed.
func (s *Supervisor) start(ctx context.Context, cfg *config.Config, p *instance.Prepared) error {
	b, err := s.open(cfg, p)
	if err != nil {
		p.Close()
		return err
	}
	s.run(ctx, cfg, b)
	return nil
}

// run runs a built instance's loop until it is stopped.
func (s *Supervisor) run(ctx context.Context, cfg *config.Config, b *instance.Built) {
	name := b.Name()
	s.metrics.AddInstance(name, b.Config().Remedies.Enabled())
	s.wd.Register(name)
	ictx, cancel := context.WithCancel(ctx)
	r := &running{spec: specOf(cfg, b.Config()), timeout: b.Timeout(), built: b, cancel: cancel, done: make(chan struct{}), started: time.Now()}
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
}

// stop ends an instance's loop (its last pass undoes what no longer needs holding)
// and, when restore is set, restores everything it still holds: an instance
// removed from the configuration must leave nothing changed behind.
func (s *Supervisor) stop(name string, restore bool) {
	s.stopWhy(name, restore, "instance removed from the configuration")
}

func (s *Supervisor) stopWhy(name string, restore bool, why string) {
	r := s.get(name)
	if r == nil {
		return
	}
	s.halt(name, r)
	if restore {
		ctx, cancel := context.WithTimeout(context.Background(), 2*r.timeout+5*time.Second)
		if err := r.built.Executor.RestoreAll(ctx, why); err != nil {
			s.log.Error("could not restore every held change; the ledger keeps them",
				zap.String("instance", name), zap.String("ledger", remediate.LedgerPath(s.cfg.StateDir, name)), zap.Error(err))
		}
		cancel()
	}
	r.built.Close()
	s.forget(name)
}

// halt ends an instance's loop and waits for its last pass; its client and
// ledger stay open.
func (s *Supervisor) halt(name string, r *running) {
	// Unregister first: a stopping loop's final pass and restore must not hold back
	// the watchdog pings the other loops earn.
	s.wd.Unregister(name)
	r.cancel()
	<-r.done
}

// forget drops a halted instance from the metrics and the running set.
func (s *Supervisor) forget(name string) {
	s.metrics.RemoveInstance(name)
	s.mu.Lock()
	delete(s.insts, name)
	s.mu.Unlock()
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
		if s.get(name) != nil {
			continue
		}
		s.log.Warn("a ledger of held changes belongs to an instance that is not in the configuration: nothing will restore them; add the instance back and run redis-guardian restore, or remove the file once the settings are checked",
			zap.String("ledger", p), zap.String("instance_unconfigured", name))
	}
}
