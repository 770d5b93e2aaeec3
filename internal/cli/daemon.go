package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/metrics"
	"github.com/redis-guardian/redis-guardian/internal/notify"
	"github.com/redis-guardian/redis-guardian/internal/pprofserver"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

func runDaemon(ctx context.Context, args []string, env Env) int {
	var c commonFlags
	fs := newFlagSet("run", env.Stderr, &c, true)
	fs.DurationVar(&c.interval, "interval", 0, "poll interval (default from the config, 1s)")
	fs.StringVar(&c.stateDir, "state-dir", "", "where the ledger of held changes is kept (default /var/lib/redis-guardian)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "decide and report everything, change nothing")
	metricsListen := fs.String("metrics-listen", "", "host:port for /metrics, /-/healthy and /-/ready; \"\" disables (default from the config, "+config.DefaultMetricsListen+")")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", logAuto, "auto (journal under systemd, console otherwise), journal, console or json")
	pprofAddr := fs.String("pprof-listen", "", "serve /debug/pprof/ on this address, e.g. 127.0.0.1:6060 (default off; never the metrics port)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err, 2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "metrics-listen" {
			c.metricsListen = metricsListen
		}
	})
	log, chosen, err := newLogger(env, *level, *format)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	cfg, err := loadConfig(c, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%v\n", err)
		return 2
	}
	n, err := notify.New(env.Getenv)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 2
	}
	log.Debug("logging", zap.String("format", chosen))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := metrics.New(Version)
	svc := newService(cfg, c, log, n, m)
	reload := make(chan struct{}, 1)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	exited := make(chan struct{}) // ends the signal handler when run returns
	defer close(exited)
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					select {
					case reload <- struct{}{}:
					default: // one is pending already: it will read the newest file
					}
					continue
				}
				log.Info("stopping", zap.String("event", eventStopping), zap.String("signal", sig.String()))
				cancel()
				// A second stop signal means "now": the operator does not want the final pass.
				for {
					select {
					case sig := <-sigs:
						if sig != syscall.SIGHUP {
							log.Warn("second signal, exiting at once", zap.String("signal", sig.String()))
							os.Exit(1)
						}
					case <-exited:
						return
					}
				}
			case <-exited:
				return
			}
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	if cfg.MetricsListen != "" {
		ln, err := metrics.Listen(cfg.MetricsListen)
		if err != nil {
			log.Error("cannot start", zap.Error(err))
			return 1
		}
		g.Go(func() error { return metrics.Serve(gctx, ln, m.Handler(svc, log.Named("metrics"))) })
	}
	if *pprofAddr != "" {
		// A profiling aid must not take the guardian down: its failure is only logged.
		g.Go(func() error {
			if err := pprofserver.Serve(gctx, *pprofAddr, log.Named("pprof")); err != nil {
				log.Error("pprof server failed", zap.Error(err))
			}
			return nil
		})
	}
	g.Go(func() error {
		err := svc.run(gctx, reload)
		if err != nil {
			err = fmt.Errorf("start: %w", err)
		}
		return err
	})
	if err := g.Wait(); err != nil {
		log.Error("stopped with an error", zap.Error(err))
		return 1
	}
	log.Info("stopped", zap.String("event", "stopped"))
	return 0
}

func openLedger(cfg *config.Config, name string) (remediate.Ledger, error) {
	if cfg.Mode == config.ModeDryRun {
		return remediate.NewMemLedger(), nil
	}
	return remediate.OpenFileLedger(cfg.StateDir, name)
}

func runRestore(ctx context.Context, args []string, env Env) int {
	var c commonFlags
	fs := newFlagSet("restore", env.Stderr, &c, true)
	fs.StringVar(&c.stateDir, "state-dir", "", "where the ledger of held changes is kept (default /var/lib/redis-guardian)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err, 2)
	}
	log, _, err := newLogger(env, "info", logConsole)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 2
	}
	cfg, err := loadConfig(c, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%v\n", err)
		return 2
	}
	var errs []error
	total := 0
	for _, in := range cfg.Instances {
		if _, err := os.Stat(remediate.LedgerPath(cfg.StateDir, in.Name)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		ledger, err := remediate.OpenFileLedger(cfg.StateDir, in.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		held := len(ledger.All())
		total += held
		col, closeFn, err := newCollector(cfg, in, nil, 5*time.Second)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		exec := &remediate.Executor{
			Instance: in.Name, Addr: monitor.RedactAddr(in.Addr), Client: col.Redis().Client(), ConfigCommand: in.ConfigCommand,
			Ledger: ledger, Log: log.With(zap.String("instance", in.Name)), Now: time.Now,
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := exec.RestoreAll(rctx, "redis-guardian restore"); err != nil {
			errs = append(errs, err)
		}
		cancel()
		closeFn()
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(env.Stderr, "restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "restore: %d held change(s) processed; the ledger is empty\n", total)
	return 0
}
