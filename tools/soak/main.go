// Command soak is the driver of `make soak`: a seeded, reproducible random fault
// soak of the real redis-guardian binary. It starts one redis-server per build of
// the matrix, each under a write load, runs the guardian as a subprocess on them,
// injects a random schedule of real faults drawn from the seed (the same seed
// gives the same schedule), and has an independent observer check the guardian's
// promises from INFO, CONFIG GET and the ledger files: writes rejected only within
// each fault's budget, every changed setting named in the ledger, the operator's
// value wins, nothing left changed once the faults stop, no crash, a bounded RSS.
// It prints a report and exits 1 on any violation. It needs root, like the tests.
// docs/soak.md says what it checks and why.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// options are the soak's flags.
type options struct {
	seed     uint64
	duration time.Duration
	settle   time.Duration
	guardian string
	builds   []string
	kinds    map[kind]bool
	rssMiB   int64
	verbose  bool
	dryRun   bool
	outDir   string
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var o options
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the schedule (0: a random one, printed)")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long faults are injected")
	fs.DurationVar(&o.settle, "settle", 90*time.Second, "how long after the last fault everything must be given back")
	fs.StringVar(&o.guardian, "guardian", "", "the redis-guardian binary (default: go build ./cmd/redis-guardian)")
	builds := fs.String("builds", strings.Join(testredis.MatrixNames, ","), "the server builds, one instance each")
	kindList := fs.String("kinds", "", "the fault kinds to inject (default: all)")
	fs.Int64Var(&o.rssMiB, "rss-limit", 100, "the guardian's RSS bound in MiB")
	fs.BoolVar(&o.verbose, "v", false, "log every fault as it is cleared")
	fs.StringVar(&o.outDir, "out", "dist/soak", "where the guardian's log and the report are kept")
	fs.BoolVar(&o.dryRun, "schedule-only", false, "print the schedule and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.seed == 0 {
		o.seed = rand.Uint64()
	}
	o.builds = strings.Split(*builds, ",")
	o.kinds = map[kind]bool{}
	for _, ks := range kinds {
		o.kinds[ks.kind] = *kindList == ""
	}
	for _, k := range strings.Split(*kindList, ",") {
		if k == "" {
			continue
		}
		if _, ok := o.kinds[kind(k)]; !ok {
			return o, fmt.Errorf("unknown fault kind %q", k)
		}
		o.kinds[kind(k)] = true
	}
	return o, nil
}

func run(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		return 2
	}
	steps := schedule(o.seed, o.duration, len(o.builds), o.kinds)
	fmt.Printf("soak: seed %d, %s of faults on %v (rerun: make soak SOAK_SEED=%d SOAK_DURATION=%s)\nschedule (%d faults):\n",
		o.seed, o.duration, o.builds, o.seed, o.duration, len(steps))
	printSchedule(os.Stdout, steps, o.builds)
	if o.dryRun {
		return 0
	}
	k := &soak{opts: o, run: newScope("soak", o.verbose)}
	defer k.run.Close()
	builds, err := selectBuilds(k.run, o.builds)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		return 2
	}
	// SIGINT or SIGTERM clears every fault at once and skips the settle checks,
	// so the mounts, ownerships and limits are put back before the exit.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := k.setUp(ctx, builds); err != nil {
		fmt.Fprintf(os.Stderr, "soak: set up: %v\n", err)
		return 2
	}
	return k.soak(ctx, steps)
}

// soak runs the schedule with the writers, the observer and the RSS sampler, then
// the settle checks, and reports.
func (k *soak) soak(ctx context.Context, steps []step) int {
	bg, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	for _, w := range k.writers {
		go w.run(bg)
	}
	go func() { k.obs.run(bg); close(done) }()
	go k.sampleRSS(bg, 5*time.Second, k.opts.rssMiB*1024)
	time.Sleep(3 * time.Second) // the guardian's start: its first ticks and standing holds
	k.start = time.Now()
	k.execute(ctx, steps)
	if ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "soak: interrupted after %s: faults cleared, no settle checks\n", time.Since(k.start).Round(time.Second))
		k.violation("soak", "interrupted: the run is incomplete")
	} else {
		fmt.Fprintf(os.Stderr, "soak: faults done after %s; settling\n", time.Since(k.start).Round(time.Second))
		k.settle(ctx, k.opts.settle)
	}
	stop()
	<-done
	s := summary{seed: k.opts.seed, duration: k.opts.duration, names: k.names, steps: steps}
	var rejected []rejection
	for _, w := range k.writers {
		ok, rej := w.counts()
		s.ok += ok
		rejected = append(rejected, rej...)
	}
	for _, r := range rejected {
		if r.class == "unavailable" {
			s.unavailable++
		}
	}
	k.mu.Lock()
	ws, budgetViolations := attribute(k.faults, k.obs.Episodes(), rejected, k.names)
	s.windows, s.violations = ws, append(slices.Clone(k.violations), budgetViolations...)
	s.injectErrs, s.rss = k.injectErrs, k.rss
	k.mu.Unlock()
	s.guardStarts = k.g.starts
	s.write(os.Stdout)
	if err := k.keep(s); err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
	}
	if len(s.violations) > 0 {
		fmt.Printf("soak: FAILED with %d violations (seed %d)\n", len(s.violations), k.opts.seed)
		return 1
	}
	fmt.Printf("soak: ok (seed %d)\n", k.opts.seed)
	return 0
}

// selectBuilds returns the provisioned builds named.
func selectBuilds(t *scope, names []string) ([]testredis.Build, error) {
	var all []testredis.Build
	if err := try(t, func() { all = testredis.Matrix(t) }); err != nil {
		return nil, err
	}
	var out []testredis.Build
	for _, n := range names {
		i := slices.IndexFunc(all, func(b testredis.Build) bool { return b.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("build %s is not provisioned (scripts/servers.sh)", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}
