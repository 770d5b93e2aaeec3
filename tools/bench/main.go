// Command bench is the driver of `make bench`: it measures what the guardian costs a
// Redis and how fast it gets a Redis writable again, against real redis-servers it
// starts itself (internal/testredis) with real faults, using public tools
// (redis-benchmark, /usr/bin/time -v) where they exist, and writes a markdown report
// with a PNG plot. It needs root, like the integration tests.
//
// -quick is the smoke mode CI runs: every measurement once and short, to prove the
// machinery works end to end; its numbers are not meant to be read.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// params are the sizes of one run.
type params struct {
	costRounds, costRequests int
	rtWindow                 time.Duration
	resWindow                time.Duration
	resRepeats               int
	writableReps             int
	noGuardianReps           int
	noGuardianHold           time.Duration
	predictReps              int
	replRounds               int
	stormWindow              time.Duration
	stormLoadWindow          time.Duration
	stormLoadReps            int
	sideWindow               time.Duration
	sideRepeats              int
	forkSize                 fbSize
	forkReps                 int
	memoryReps               int
	memoryWindow             time.Duration
	runawayWindow            time.Duration
}

var (
	fullParams = params{
		costRounds: 20, costRequests: 500_000,
		rtWindow:  20 * time.Second,
		resWindow: 20 * time.Second, resRepeats: 3,
		writableReps: 7, noGuardianReps: 2, noGuardianHold: 2 * time.Second, predictReps: 5,
		replRounds: 10, stormWindow: 60 * time.Second, stormLoadWindow: 10 * time.Second, stormLoadReps: 5,
		sideWindow: 30 * time.Second, sideRepeats: 2,
		forkSize: fbSize{keys: 150_000, saveAfter: 10, keyDelay: 60}, forkReps: 3,
		memoryReps: 2, memoryWindow: 20 * time.Second, runawayWindow: 30 * time.Second,
	}
	quickParams = params{
		costRounds: 2, costRequests: 100_000,
		rtWindow:  2 * time.Second,
		resWindow: 2 * time.Second, resRepeats: 1,
		writableReps: 1, noGuardianReps: 1, noGuardianHold: time.Second, predictReps: 1,
		replRounds: 1, stormWindow: 3 * time.Second, stormLoadWindow: 3 * time.Second, stormLoadReps: 1,
		sideWindow: 3 * time.Second, sideRepeats: 1,
		forkSize: fbSize{keys: 20_000, saveAfter: 8, keyDelay: 100}, forkReps: 1,
		memoryReps: 1, memoryWindow: 12 * time.Second, runawayWindow: 12 * time.Second,
	}
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "smoke mode: each measurement once and short (CI)")
	bin := fs.String("guardian", "bin/redis-guardian", "the redis-guardian binary to measure")
	before := fs.String("guardian-before", "", "a binary of the code before the performance fixes, measured alternately for CPU and RSS")
	out := fs.String("out", "docs/benchmarks.md", "where to write the report")
	plot := fs.String("plot", "", "where to write the PNG plot (default: beside -out)")
	goBench := fs.String("gobench", "", "go test -bench output to include")
	benchstat := fs.String("benchstat", "", "benchstat output (before vs after) to include")
	verbose := fs.Bool("v", false, "log each step to stderr")
	only := fs.String("only", "", "run only these steps (comma-separated: cost, roundtrips, resources, writable, replication, storm, stormload, exporter, forkbudget, memory), e.g. to compare two binaries' CPU with -guardian-before")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *plot == "" {
		*plot = filepath.Join(filepath.Dir(*out), "benchmarks-rejected-writes.png")
	}
	if _, err := os.Stat(*bin); err != nil {
		fmt.Fprintf(os.Stderr, "bench: guardian binary: %v (run make build)\n", err)
		return 2
	}
	p := fullParams
	if *quick {
		p = quickParams
	}
	r := &report{quick: *quick, params: p, started: time.Now(), bin: *bin, before: *before, plotPath: *plot}
	var errs []error
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	step := func(name string, fn func(t *benchT)) {
		if len(want) > 0 && !want[stepKeys[name]] {
			return
		}
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", name)
		t0 := time.Now()
		if err := scenario(name, *verbose, fn); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			errs = append(errs, err)
			r.failures = append(r.failures, err.Error())
		}
		fmt.Fprintf(os.Stderr, "bench: %s done in %s\n", name, time.Since(t0).Round(100*time.Millisecond))
	}

	step("cost to redis", func(t *benchT) { r.cost = measureCost(t, *bin, p.costRounds, p.costRequests) })
	step("round trips per tick", func(t *benchT) {
		r.rt = append(r.rt, measureRoundTrips(t, 100*time.Millisecond, time.Minute, p.rtWindow))
		r.rt = append(r.rt, measureRoundTrips(t, time.Second, time.Minute, p.rtWindow))
		r.rt = append(r.rt, measureRoundTrips(t, 100*time.Millisecond, p.rtWindow/4, p.rtWindow))
	})
	step("guardian cpu and rss", func(t *benchT) { r.res = measureAllResources(t, *bin, *before, p) })
	step("time to writable", func(t *benchT) { r.writable = measureWritable(t, p, *verbose) })
	step("replicas and sentinel", func(t *benchT) { r.repl = measureReplication(t, p.replRounds, *verbose) })
	step("aof rewrite storm", func(t *benchT) { r.storm = measureStorm(t, p.stormWindow, *quick, *verbose) })
	step("aof rewrite storm under fsync load", func(t *benchT) {
		r.stormLoad = measureStormLoad(t, p.stormLoadWindow, p.stormLoadReps, *verbose)
	})
	step("beside the exporter", func(t *benchT) { r.side = measureSideBySide(t, *bin, p.sideWindow, p.sideRepeats, sideSizes) })
	step("fork budget in one memory cgroup", func(t *benchT) { r.fork = measureForkBudget(t, p.forkSize, p.forkReps, *verbose) })
	step("writes rejected under memory pressure", func(t *benchT) { r.memory = measureMemory(t, p, *verbose) })

	if err := r.writePlot(); err != nil {
		errs = append(errs, err)
	}
	if err := r.write(*out, *goBench, *benchstat); err != nil {
		errs = append(errs, err)
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s and %s in %s\n", *out, *plot, time.Since(r.started).Round(time.Second))
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "bench: FAILED: %v\n", err)
		return 1
	}
	return 0
}

// stepKeys are the names -only takes.
var stepKeys = map[string]string{
	"cost to redis": "cost", "round trips per tick": "roundtrips", "guardian cpu and rss": "resources",
	"time to writable": "writable", "replicas and sentinel": "replication", "aof rewrite storm": "storm",
	"aof rewrite storm under fsync load":    "stormload",
	"beside the exporter":                   "exporter",
	"fork budget in one memory cgroup":      "forkbudget",
	"writes rejected under memory pressure": "memory",
}

func measureAllResources(t *benchT, bin, before string, p params) []resourceRun {
	var socks []string
	for range 16 {
		socks = append(socks, testredis.Start(t, testredis.Options{}).Socket)
	}
	var out []resourceRun
	for rep := range p.resRepeats {
		// Alternate the order of the configurations between repeats.
		cfgs := []struct {
			n        int
			interval time.Duration
		}{{1, time.Second}, {16, time.Second}, {1, 100 * time.Millisecond}, {16, 100 * time.Millisecond}}
		if rep%2 == 1 {
			slices.Reverse(cfgs)
		}
		for _, c := range cfgs {
			rr := measureResources(t, bin, socks[:c.n], c.interval, p.resWindow)
			t.Logf("resources %d x %s: cpu %.2f%% rss %d KiB", c.n, c.interval, rr.cpuPct, rr.maxRSSKiB)
			out = append(out, rr)
			if before != "" {
				// Side by side with the code before the fixes, same servers.
				rb := measureResources(t, before, socks[:c.n], c.interval, p.resWindow)
				rb.before = true
				out = append(out, rb)
			}
		}
	}
	return out
}

// writableKey names one cell of figure 4.
type writableKey struct{ fault, mode string }

func measureWritable(t *benchT, p params, verbose bool) map[writableKey][]window {
	out := map[writableKey][]window{}
	var errs []error
	runOne := func(f fault, mode string) {
		var res window
		err := scenario(f.name+" / "+mode, verbose, func(t *benchT) { res = writableRun(t, f, mode, p.noGuardianHold) })
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			errs = append(errs, err)
			return
		}
		k := writableKey{f.name, mode}
		out[k] = append(out[k], res)
	}
	for _, f := range faults {
		// Interleave the modes, so a busy spell on the machine hits them all alike.
		for rep := range p.writableReps {
			runOne(f, modeFollower)
			runOne(f, modeNoLog)
			if rep < p.noGuardianReps {
				runOne(f, modeNone)
			}
		}
	}
	for range p.predictReps {
		runOne(faults[1], modePredict)
	}
	if len(errs) > 0 {
		t.Errorf("%d of the time-to-writable runs failed: %v", len(errs), errors.Join(errs...))
	}
	return out
}

var plotColors = map[string]color.RGBA{
	modeNone:     {200, 40, 40, 255},
	modeNoLog:    {230, 140, 20, 255},
	modeFollower: {30, 150, 60, 255},
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile is the nearest-rank percentile: with few samples p99 is the maximum.
func percentile[T cmp.Ordered](v []T, p float64) T {
	var zero T
	if len(v) == 0 {
		return zero
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
