package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/pprofserver"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// newLogger builds the logger: console lines on stderr, which journald captures
// with their level when run as a service.
func newLogger(env Env, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.SecondsDurationEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(ec), zapcore.AddSync(env.Stderr), lvl)
	return zap.New(core), nil
}

func runDaemon(ctx context.Context, args []string, env Env) int {
	var c commonFlags
	fs := newFlagSet("run", env.Stderr, &c, true)
	fs.DurationVar(&c.interval, "interval", 0, "poll interval (default from the config, 1s)")
	fs.StringVar(&c.stateDir, "state-dir", "", "where the ledger of held changes is kept (default /var/lib/redis-guardian)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "decide and report everything, change nothing")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	pprofAddr := fs.String("pprof-listen", "", "serve /debug/pprof/ on this address, e.g. 127.0.0.1:6060 (default off; never the metrics port)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err, 2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(env, *level)
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

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		select {
		case sig := <-sigs:
			log.Info("stopping", zap.String("event", "stopping"), zap.String("signal", sig.String()))
			cancel()
		case <-ctx.Done():
			return
		}
		// A second signal means "now": the operator does not want the final pass.
		sig := <-sigs
		log.Warn("second signal, exiting at once", zap.String("signal", sig.String()))
		os.Exit(1)
	}()

	insts, closeAll, err := buildInstances(cfg, log)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	defer closeAll()
	log.Info("started", zap.String("event", "started"), zap.String("version", Version), zap.Int("instances", len(insts)),
		zap.String("mode", string(cfg.Mode)), zap.Duration("interval", cfg.Interval), zap.String("state_dir", cfg.StateDir))
	if *pprofAddr != "" {
		// A profiling aid must not take the guardian down: its failure is only logged.
		go func() {
			if err := pprofserver.Serve(ctx, *pprofAddr, log.Named("pprof")); err != nil {
				log.Error("pprof server failed", zap.Error(err))
			}
		}()
	}
	if err := daemon.RunAll(ctx, insts); err != nil {
		log.Error("stopped with an error", zap.Error(err))
		return 1
	}
	log.Info("stopped", zap.String("event", "stopped"))
	return 0
}

func buildInstances(cfg *config.Config, log *zap.Logger) ([]*daemon.Instance, func(), error) {
	host := monitor.NewHostSource(monitor.HostOptions{})
	var insts []*daemon.Instance
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for _, in := range cfg.Instances {
		timeout := max(cfg.Interval, time.Second)
		col, closeFn, err := newCollector(cfg, in, host, timeout)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, closeFn)
		ilog := log.With(zap.String("instance", in.Name), zap.String("addr", monitor.RedactAddr(in.Addr)))
		ledger, err := openLedger(cfg, in.Name)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("instance %s: %w", in.Name, err)
		}
		exec := &remediate.Executor{
			Instance: in.Name, Addr: monitor.RedactAddr(in.Addr), Client: col.Redis().Client(), ConfigCommand: in.ConfigCommand,
			Ledger: ledger, DryRun: cfg.Mode == config.ModeDryRun, Log: ilog.Named("remediate"), Now: time.Now,
		}
		insts = append(insts, &daemon.Instance{
			Collector: col, Executor: exec, Thresholds: in.Thresholds, Remedies: in.Remedies, Ignore: in.IgnoreSet(),
			Interval: cfg.Interval, Timeout: timeout, Log: ilog,
		})
	}
	return insts, closeAll, nil
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
	log, err := newLogger(env, "info")
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
