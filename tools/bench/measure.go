package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// costRound is one side-by-side round of figure 1: throughput without and with the
// guardian polling, per redis-benchmark test.
type costRound struct {
	without, with map[string]float64 // test -> requests/s
}

// redisBenchmark runs redis-benchmark on the unix socket and returns requests/s per
// test. Pipelined (-P 16) so Redis, not the client's round trips, is the bottleneck
// and any cost the guardian adds shows.
func redisBenchmark(sock string, n int) (map[string]float64, error) {
	out, err := exec.Command("redis-benchmark", "-s", sock, "-t", "set,get", "-n", strconv.Itoa(n),
		"-c", "8", "-P", "16", "-r", "100000", "--csv").Output()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark: %w", err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse redis-benchmark --csv: %w", err)
	}
	res := map[string]float64{}
	for _, r := range recs {
		if len(r) < 2 || r[0] == "test" {
			continue
		}
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			return nil, fmt.Errorf("parse redis-benchmark rps %q: %w", r[1], err)
		}
		res[r[0]] = v
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redis-benchmark printed no results: %q", out)
	}
	return res, nil
}

// measureCost alternates "no guardian" and "guardian at 100 ms" against the same
// server, swapping the order each round so drift in the machine's load cancels out.
// One guardian process runs throughout; "no guardian" is that process frozen with
// SIGSTOP (it sends nothing and takes no CPU), so rounds can be short and many
// without paying for start-ups.
func measureCost(t *benchT, bin string, rounds, n int) []costRound {
	srv := testredis.Start(t, testredis.Options{NoSave: true})
	// Warm up: the first run pays for allocating the keyspace.
	if _, err := redisBenchmark(srv.Socket, n); err != nil {
		t.Fatalf("%v", err)
	}
	g := startBinary(t, bin, []string{srv.Socket}, 100*time.Millisecond, false)
	// Registered after startBinary's cleanup, so it runs first: a stopped process
	// would not act on SIGTERM.
	t.Cleanup(func() { _ = syscall.Kill(g.pid, syscall.SIGCONT) })
	time.Sleep(time.Second) // past start-up and the first CONFIG GET
	var out []costRound
	for i := range rounds {
		var r costRound
		withGuardian := func() {
			if err := syscall.Kill(g.pid, syscall.SIGCONT); err != nil {
				t.Fatalf("SIGCONT guardian: %v", err)
			}
			time.Sleep(300 * time.Millisecond) // a few ticks in before measuring
			res, err := redisBenchmark(srv.Socket, n)
			if err != nil {
				t.Fatalf("%v", err)
			}
			r.with = res
		}
		without := func() {
			if err := syscall.Kill(g.pid, syscall.SIGSTOP); err != nil {
				t.Fatalf("SIGSTOP guardian: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
			res, err := redisBenchmark(srv.Socket, n)
			if err != nil {
				t.Fatalf("%v", err)
			}
			r.without = res
		}
		if i%2 == 0 {
			without()
			withGuardian()
		} else {
			withGuardian()
			without()
		}
		t.Logf("cost round %d: without %v with %v", i, r.without, r.with)
		out = append(out, r)
	}
	if err := syscall.Kill(g.pid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT guardian: %v", err)
	}
	if err := g.stop(); err != nil {
		t.Fatalf("guardian exited with %v", err)
	}
	return out
}

// roundTrips is figure 2: commands the guardian sent per tick, from Redis's own
// INFO commandstats.
type roundTrips struct {
	interval, refresh time.Duration
	window            time.Duration
	ticks             int64
	calls             map[string]int64 // command -> calls by the guardian
	usec              map[string]int64 // command -> Redis main-thread microseconds
}

func measureRoundTrips(t *benchT, interval, refresh, window time.Duration) roundTrips {
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	g := startInproc(t, srv, inprocOpts{interval: interval, configRefresh: refresh})
	// Past the first tick, which reads CONFIG once; steady state is what follows.
	g.waitTicks(t, 2)
	ctx := context.Background()
	// Reset and read right after a tick completed, so no tick straddles either
	// end of the window (a tick takes about a millisecond, the interval is 100x).
	t0 := g.nextTick(t)
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
	time.Sleep(window)
	ticks := g.nextTick(t) - t0
	raw, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	calls, usec := map[string]int64{}, map[string]int64{}
	for _, line := range strings.Split(raw, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(k, "cmdstat_") {
			continue
		}
		name := strings.TrimPrefix(k, "cmdstat_")
		for _, kv := range strings.Split(v, ",") {
			f, val, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(val, 10, 64)
			switch f {
			case "calls":
				calls[name] = n
			case "usec":
				usec[name] = n
			}
		}
	}
	// CONFIG RESETSTAT is the driver's, not the guardian's.
	delete(calls, "config|resetstat")
	delete(usec, "config|resetstat")
	// Redis adds a command to commandstats after it ran, so this INFO is not in
	// its own reply: every call listed is the guardian's.
	return roundTrips{interval: interval, refresh: refresh, window: window, ticks: ticks, calls: calls, usec: usec}
}

// resourceRun is figure 3: the binary's CPU and peak RSS watching n instances.
type resourceRun struct {
	instances int
	interval  time.Duration
	window    time.Duration
	cpuPct    float64 // steady state, % of one core
	totalPct  float64 // whole run incl. start-up, from /usr/bin/time
	maxRSSKiB int64
	before    bool // measured with the binary of the code before the fixes
}

func measureResources(t *benchT, bin string, sockets []string, interval, window time.Duration) resourceRun {
	g := startBinary(t, bin, sockets, interval, true)
	start := time.Now()
	// Let start-up (config, first ticks, log tail scans) pass before the steady window.
	time.Sleep(2 * time.Second)
	c0, err := cpuTicks(g.pid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	w0 := time.Now()
	time.Sleep(window)
	c1, err := cpuTicks(g.pid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	steady := time.Since(w0)
	if err := g.stop(); err != nil {
		t.Fatalf("guardian exited with %v", err)
	}
	total := time.Since(start)
	rss, cpu, err := timeReport(g.timeOut)
	if err != nil {
		t.Fatalf("%v", err)
	}
	const userHZ = 100 // USER_HZ, fixed at 100 on Linux
	return resourceRun{
		instances: len(sockets), interval: interval, window: steady,
		cpuPct:    float64(c1-c0) / userHZ / steady.Seconds() * 100,
		totalPct:  cpu.Seconds() / total.Seconds() * 100,
		maxRSSKiB: rss,
	}
}
