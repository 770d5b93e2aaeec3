package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/metrics"
	"github.com/redis-guardian/redis-guardian/internal/notify"
	"github.com/redis-guardian/redis-guardian/internal/pprofserver"
	"github.com/redis-guardian/redis-guardian/internal/supervisor"
	"github.com/redis-guardian/redis-guardian/pkg/events"
)

// runOptions are the flags of `run` beyond the common ones.
type runOptions struct {
	common    commonFlags
	level     string
	format    string
	pprofAddr string
}

func parseRunFlags(args []string, env Env) (runOptions, int, bool) {
	var o runOptions
	c := &o.common
	fs := newFlagSet("run", env.Stderr, c, true)
	fs.DurationVar(&c.interval, "interval", 0, "poll interval (default from the config, 1s)")
	fs.StringVar(&c.stateDir, "state-dir", "", "where the ledger of held changes is kept (default /var/lib/redis-guardian)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "decide and report everything, change nothing")
	metricsListen := fs.String("metrics-listen", "", "host:port for /metrics, /-/healthy and /-/ready; \"\" disables (default from the config, "+config.DefaultMetricsListen+")")
	fs.StringVar(&o.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.format, "log-format", logAuto, "auto (journal under systemd, console otherwise), journal, console or json")
	fs.StringVar(&o.pprofAddr, "pprof-listen", "", "serve /debug/pprof/ on this address, e.g. 127.0.0.1:6060 (default off; never the metrics port)")
	if err := fs.Parse(args); err != nil {
		return o, flagExit(err, 2), false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "run: unexpected argument %q\n", fs.Arg(0))
		return o, 2, false
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "metrics-listen" {
			c.metricsListen = metricsListen // only an explicit flag overrides the file, even ""
		}
	})
	return o, 0, true
}

func runDaemon(ctx context.Context, args []string, env Env) int {
	o, code, ok := parseRunFlags(args, env)
	if !ok {
		return code
	}
	log, chosen, err := newLogger(env, o.level, o.format)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	routeRedisLog(log)
	cfg, err := loadConfig(o.common, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%v\n", err)
		return 2
	}
	if w := config.PprofWildcardWarning(o.pprofAddr); w != "" {
		fmt.Fprintf(env.Stderr, "redis-guardian: warning: %s\n", w)
	}
	n, err := notify.New()
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 2
	}
	log.Debug("logging", zap.String("format", chosen))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := metrics.New(Version)
	svc := supervisor.New(cfg, supervisor.Options{
		// A reload reads the file again with the same flag overrides.
		Load:    func() (*config.Config, error) { return loadConfig(o.common, warnLog{log}) },
		Version: Version, Log: log, Notifier: n, Metrics: m,
	})
	reload := make(chan struct{}, 1)
	stopSignals := handleSignals(log, cancel, reload)
	defer stopSignals()

	g, gctx := errgroup.WithContext(ctx)
	if cfg.MetricsListen != "" {
		ln, err := metrics.Listen(cfg.MetricsListen)
		if err != nil {
			log.Error("cannot start", zap.Error(err))
			return 1
		}
		g.Go(func() error { return metrics.Serve(gctx, ln, m.Handler(svc, log.Named("metrics"))) })
	}
	if o.pprofAddr != "" {
		// A profiling aid must not take the guardian down: its failure is only logged.
		g.Go(func() error {
			if err := pprofserver.Serve(gctx, o.pprofAddr, log.Named("pprof")); err != nil {
				log.Error("pprof server failed", zap.Error(err))
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := svc.Run(gctx, reload); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		log.Error("stopped with an error", zap.Error(err))
		return 1
	}
	log.Info("stopped", events.Field(events.Stopped))
	return 0
}

// handleSignals turns SIGHUP into a reload request and SIGTERM/SIGINT into cancel;
// a second stop signal exits at once (the operator does not want the final pass).
// The returned function ends the handler.
func handleSignals(log *zap.Logger, cancel context.CancelFunc, reload chan<- struct{}) func() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	exited := make(chan struct{})
	go func() {
		stopping := false
		for {
			select {
			case sig := <-sigs:
				switch {
				case sig == syscall.SIGHUP && !stopping:
					select {
					case reload <- struct{}{}:
					default: // one is pending already: it will read the newest file
					}
				case sig == syscall.SIGHUP:
				case stopping:
					log.Warn("second signal, exiting at once", zap.String("signal", sig.String()))
					os.Exit(1)
				default:
					stopping = true
					log.Info("stopping", events.Field(events.Stopping), zap.String("signal", sig.String()))
					cancel()
				}
			case <-exited:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(exited)
	}
}

// warnLog turns config warnings met on reload into log lines (at start-up
// they go to stderr before the logger exists).
type warnLog struct{ log *zap.Logger }

func (d warnLog) Write(p []byte) (int, error) {
	d.log.Warn(strings.TrimSpace(strings.TrimPrefix(string(p), "redis-guardian: warning: ")))
	return len(p), nil
}
