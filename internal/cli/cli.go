// Package cli is redis-guardian's command line: it parses flags, loads the
// configuration and wires the pieces together explicitly, in one place. main is a
// thin shell around Run so the whole program can be tested in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/check"
	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Version is stamped at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

const usage = `redis-guardian keeps Redis writable and healthy through persistence and memory trouble.

Usage:
  redis-guardian run          [-c PATH] [--addr ADDR] [--interval DUR] [--state-dir DIR] [--dry-run]
                              [--metrics-listen HOST:PORT] [--pprof-listen HOST:PORT]
                              [--log-format auto|journal|console|json] [--log-level LEVEL]
  redis-guardian check        [-c PATH] [--addr ADDR] [--format text|json] [--timeout DUR]
  redis-guardian check-config [-c PATH] [--host=false]
  redis-guardian restore      [-c PATH] [--addr ADDR] [--state-dir DIR]
  redis-guardian preflight    [-c PATH] [--redis-conf PATH] [--check-aof PATH]
  redis-guardian status       [-c PATH] [--state-dir DIR] [--format text|json]
  redis-guardian completion   bash|zsh
  redis-guardian version

Configuration is read from ` + config.DefaultPath + ` unless -c is given; with no
file and no --addr, it watches ` + config.DefaultAddr + `.

run speaks sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING) under systemd,
reloads its configuration on SIGHUP, and stops on SIGTERM or SIGINT (a second
signal exits at once). restore undoes every change in the ledger (default state
dir /var/lib/redis-guardian).

check exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check could not run).
Run "redis-guardian COMMAND -h" for a command's flags; see also redis-guardian(1).
`

// Env is what the program takes from its surroundings, so tests can supply it.
type Env struct {
	Stdout, Stderr io.Writer
	Now            func() time.Time
	Getenv         func(string) string
}

// Run executes one command line and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "check":
		return runCheck(ctx, args[1:], env)
	case "check-config":
		return runCheckConfig(args[1:], env)
	case "run":
		return runDaemon(ctx, args[1:], env)
	case "restore":
		return runRestore(ctx, args[1:], env)
	case "completion":
		return runCompletion(args[1:], env)
	case "status":
		return runStatus(ctx, args[1:], env)
	case "preflight":
		return runPreflight(ctx, args[1:], env)
	case "version", "--version", "-version":
		fmt.Fprintf(env.Stdout, "redis-guardian %s\n", Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(env.Stderr, "redis-guardian: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// commonFlags are shared by the commands that load a configuration.
type commonFlags struct {
	path     string
	addr     string
	interval time.Duration
	stateDir string
	dryRun   bool
	// metricsListen is set only when --metrics-listen was given ("" disables).
	metricsListen *string
}

func newFlagSet(name string, stderr io.Writer, c *commonFlags, withAddr bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.path, "c", "", "config file (default "+config.DefaultPath+" when it exists)")
	fs.StringVar(&c.path, "config", "", "same as -c")
	if withAddr {
		fs.StringVar(&c.addr, "addr", "", "Redis address (host:port, unix socket path, redis:// or rediss:// URL); overrides the file's single instance")
	}
	return fs
}

// loadConfig reads the file (or the defaults when no file exists and none was named)
// and applies flag overrides.
func loadConfig(c commonFlags, stderr io.Writer) (*config.Config, error) {
	var cfg *config.Config
	path := c.path
	if path == "" {
		if _, err := os.Stat(config.DefaultPath); err == nil {
			path = config.DefaultPath
		}
	}
	if path == "" {
		cfg = config.Default()
	} else {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	if err := cfg.Apply(config.Overrides{Addr: c.addr, Interval: c.interval, DryRun: c.dryRun, StateDir: c.stateDir, MetricsListen: c.metricsListen}); err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "redis-guardian: warning: %s\n", w)
	}
	return cfg, nil
}

func runCheckConfig(args []string, env Env) int {
	var c commonFlags
	fs := newFlagSet("check-config", env.Stderr, &c, false)
	host := fs.Bool("host", true, "check the files the config names (password_file, tls ca, cert and key) on this host; --host=false judges a file meant for another host")
	if err := fs.Parse(args); err != nil {
		return flagExit(err, 1)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "check-config: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	path := c.path
	if path == "" {
		path = config.DefaultPath
	}
	// Said whatever the verdict, so nobody takes the files for checked.
	skipped := ""
	if !*host {
		skipped = "; host checks skipped (--host=false): the files named by password_file and tls were not looked at"
	}
	cfg, err := config.LoadWith(path, config.Options{OtherHost: !*host})
	if err != nil {
		fmt.Fprintf(env.Stderr, "%v\n", err)
		if skipped != "" {
			fmt.Fprintf(env.Stderr, "note: %s\n", strings.TrimPrefix(skipped, "; "))
		}
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.Stderr, "warning: %s\n", w)
	}
	names := make([]string, len(cfg.Instances))
	for i, in := range cfg.Instances {
		names[i] = in.Name + "=" + monitor.RedactAddr(in.Addr)
	}
	fmt.Fprintf(env.Stdout, "%s: valid; %d instance(s): %s; mode %s; interval %s%s\n", path, len(cfg.Instances), strings.Join(names, ", "), cfg.Mode, cfg.Interval, skipped)
	return 0
}

func runCheck(ctx context.Context, args []string, env Env) int {
	var c commonFlags
	fs := newFlagSet("check", env.Stderr, &c, true)
	format := fs.String("format", "text", "output format: text or json")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline for each instance")
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			// Monitoring systems show stdout: say why, not "(No output)".
			fmt.Fprintf(env.Stdout, "REDIS-GUARDIAN UNKNOWN - %s\n", oneLine(err))
		}
		return flagExit(err, check.UNKNOWN)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stdout, "REDIS-GUARDIAN UNKNOWN - unexpected argument %q\n", fs.Arg(0))
		return check.UNKNOWN
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(env.Stdout, "REDIS-GUARDIAN UNKNOWN - --format %q is not text or json\n", *format)
		return check.UNKNOWN
	}
	if *timeout <= 0 {
		fmt.Fprintf(env.Stdout, "REDIS-GUARDIAN UNKNOWN - --timeout must be positive\n")
		return check.UNKNOWN
	}
	cfg, err := loadConfig(c, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stdout, "REDIS-GUARDIAN UNKNOWN - %s\n", oneLine(err))
		fmt.Fprintf(env.Stderr, "%v\n", err)
		return check.UNKNOWN
	}
	targets, closeAll, err := buildTargets(cfg, *timeout)
	if err != nil {
		fmt.Fprintf(env.Stdout, "REDIS-GUARDIAN UNKNOWN - %s\n", oneLine(err))
		return check.UNKNOWN
	}
	defer closeAll()
	res := check.Run(ctx, targets, *timeout, env.Now)
	if *format == "json" {
		err = check.WriteJSON(env.Stdout, res)
	} else {
		err = check.WriteText(env.Stdout, res)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "check: %v\n", err)
		return check.UNKNOWN
	}
	return check.ExitCode(res.Status)
}

// buildTargets prepares a collector per configured instance.
func buildTargets(cfg *config.Config, timeout time.Duration) ([]check.Target, func(), error) {
	host := monitor.NewHostSource(monitor.HostOptions{})
	var targets []check.Target
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for _, in := range cfg.Instances {
		p, err := instance.Prepare(cfg, in, instance.Options{Host: host, Timeout: timeout})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, p.Close)
		targets = append(targets, check.Target{Collector: p.Collector, Thresholds: in.Thresholds, Ignore: in.IgnoreSet()})
	}
	return targets, closeAll, nil
}

func oneLine(err error) string {
	var ve *config.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 {
		s := ve.Problems[0]
		if len(ve.Problems) > 1 {
			s += fmt.Sprintf(" (and %d more problems)", len(ve.Problems)-1)
		}
		return "invalid configuration: " + s
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// flagExit maps a flag parse error: -h is success, anything else the given code.
func flagExit(err error, code int) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return code
}
