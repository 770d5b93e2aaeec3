package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// exporterBin is Debian's prometheus-redis-exporter (install-deps installs it).
const exporterBin = "prometheus-redis-exporter"

// Watchers side by side in figure 8.
const (
	watchGuardian = "guardian"
	watchExporter = "exporter"
)

// sideRun is one window of figure 8: one watcher (the guardian at a 1 s interval,
// or the exporter scraped once a second per instance) over n idle instances.
type sideRun struct {
	who       string
	instances int
	window    time.Duration
	// callsPerSec and usecPerSec are per instance: the commands Redis served the
	// watcher and the main-thread time they took (INFO commandstats).
	callsPerSec, usecPerSec float64
	cpuPct                  float64 // the watcher's own CPU, % of one core
	rssKiB                  int64   // its RSS at the window's end
}

// measureSideBySide runs the guardian and the exporter alternately over the same
// idle servers, for 1, 16 and 64 instances, swapping the order each repeat.
func measureSideBySide(t *benchT, bin string, window time.Duration, repeats int, sizes []int) []sideRun {
	if _, err := exec.LookPath(exporterBin); err != nil {
		t.Fatalf("%s (Debian's prometheus-redis-exporter, installed by scripts/install-deps.sh): %v", exporterBin, err)
	}
	var servers []*testredis.Server
	for range slices.Max(sizes) {
		servers = append(servers, testredis.Start(t, testredis.Options{}))
	}
	var out []sideRun
	for rep := range repeats {
		for _, n := range sizes {
			order := []string{watchGuardian, watchExporter}
			if rep%2 == 1 {
				slices.Reverse(order)
			}
			for _, who := range order {
				r := sideWindow(t, who, bin, servers[:n], window)
				t.Logf("side by side: %s x%d: %.2f calls/s, %.0f µs/s per instance; cpu %.2f%%, rss %d KiB",
					who, n, r.callsPerSec, r.usecPerSec, r.cpuPct, r.rssKiB)
				out = append(out, r)
			}
		}
	}
	return out
}

// sideWindow starts one watcher over servers, lets it settle, then measures
// Redis's accounting and the watcher's CPU over window.
func sideWindow(t *benchT, who, bin string, servers []*testredis.Server, window time.Duration) sideRun {
	var socks []string
	for _, s := range servers {
		socks = append(socks, s.Socket)
	}
	var pid int
	var stop func() error
	switch who {
	case watchGuardian:
		g := startBinary(t, bin, socks, time.Second, false)
		pid, stop = g.pid, g.stop
	default:
		e := startExporter(t, socks)
		pid, stop = e.pid, e.stop
	}
	// Past start-up: the guardian's first full reads and CONFIG GET, the
	// exporter's first scrape.
	time.Sleep(3 * time.Second)
	clients := make([]*redis.Client, len(servers))
	for i, s := range servers {
		clients[i] = s.Client(t)
	}
	ctx := context.Background()
	for _, c := range clients {
		if err := c.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatalf("CONFIG RESETSTAT: %v", err)
		}
	}
	c0, err := cpuTicks(pid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	w0 := time.Now()
	time.Sleep(window)
	c1, err := cpuTicks(pid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	elapsed := time.Since(w0)
	rss, err := vmRSS(pid)
	if err != nil {
		t.Fatalf("%v", err)
	}
	var calls, usec int64
	for _, c := range clients {
		raw, err := c.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatalf("INFO commandstats: %v", err)
		}
		cs, us := commandstats(raw)
		calls += cs
		usec += us
	}
	if err := stop(); err != nil {
		t.Fatalf("%s exited with %v", who, err)
	}
	const userHZ = 100
	per := float64(len(servers)) * elapsed.Seconds()
	return sideRun{
		who: who, instances: len(servers), window: elapsed,
		callsPerSec: float64(calls) / per, usecPerSec: float64(usec) / per,
		cpuPct: float64(c1-c0) / userHZ / elapsed.Seconds() * 100, rssKiB: rss,
	}
}

// commandstats sums calls and usec over every command but the driver's own
// CONFIG RESETSTAT (Redis lists a command after it ran, so the INFO reading
// them is not in its own reply).
func commandstats(raw string) (calls, usec int64) {
	for _, line := range strings.Split(raw, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(k, "cmdstat_") || k == "cmdstat_config|resetstat" {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			f, val, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(val, 10, 64)
			switch f {
			case "calls":
				calls += n
			case "usec":
				usec += n
			}
		}
	}
	return calls, usec
}

// vmRSS reads a process's resident set size in KiB.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS of %d: %w", pid, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in the status of %d", pid)
}

// exporter is a running prometheus-redis-exporter with a scraper that asks it for
// every target once a second, as a Prometheus with one job per instance would
// (its multi-target /scrape endpoint).
type exporter struct {
	pid  int
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func startExporter(t *benchT, sockets []string) *exporter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a port for the exporter: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	logf, err := os.Create(filepath.Join(t.TempDir(), "exporter.log"))
	if err != nil {
		t.Fatalf("create exporter log: %v", err)
	}
	e := &exporter{done: make(chan struct{}), quit: make(chan struct{})}
	// -redis.addr is its /metrics target, which nobody scrapes here: the targets
	// go through /scrape?target=.
	e.cmd = exec.Command(exporterBin, "-web.listen-address", addr, "-redis.addr", "unix://"+sockets[0])
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", exporterBin, err)
	}
	e.pid = e.cmd.Process.Pid
	go func() { e.err = e.cmd.Wait(); _ = logf.Close(); close(e.done) }()
	t.Cleanup(func() { _ = e.stop() })

	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get("http://" + addr + "/")
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s within 10s: %v", exporterBin, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range sockets {
		target := "http://" + addr + "/scrape?target=" + url.QueryEscape("unix://"+s)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				if resp, err := hc.Get(target); err == nil {
					_, _ = resp.Body.Read(make([]byte, 1))
					_ = resp.Body.Close()
				}
				select {
				case <-e.quit:
					return
				case <-tick.C:
				}
			}
		}()
	}
	return e
}

// stop ends the scrapes, then the exporter.
func (e *exporter) stop() error {
	var err error
	e.once.Do(func() {
		close(e.quit)
		e.wg.Wait()
		_ = syscall.Kill(e.pid, syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(e.pid, syscall.SIGKILL)
			<-e.done
			err = errors.New("exporter did not stop within 10s of SIGTERM")
		}
		var ee *exec.ExitError
		if err == nil && e.err != nil && !(errors.As(e.err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()) {
			err = e.err
		}
	})
	return err
}

// sideMedian is the median over repeats of one watcher at n instances.
func sideMedian(runs []sideRun, who string, n int) (sideRun, bool) {
	var calls, usec, cpu, rss []float64
	for _, r := range runs {
		if r.who == who && r.instances == n {
			calls = append(calls, r.callsPerSec)
			usec = append(usec, r.usecPerSec)
			cpu = append(cpu, r.cpuPct)
			rss = append(rss, float64(r.rssKiB))
		}
	}
	if len(calls) == 0 {
		return sideRun{}, false
	}
	return sideRun{who: who, instances: n, callsPerSec: median(calls), usecPerSec: median(usec), cpuPct: median(cpu), rssKiB: int64(median(rss))}, true
}

// sideSizes are the instance counts of figure 8.
var sideSizes = []int{1, 16, 64}

// sideSection is figure 8.
func (r *report) sideSection(p func(string, ...any)) {
	if len(r.side) == 0 {
		return
	}
	p("## 8. Beside prometheus-redis-exporter\n\n")
	p("Method: the same idle redis-servers (Debian's default save points, no writes) watched in turn by the guardian (`run`, interval 1 s, defaults: `info_refresh` 10 s, `config_refresh` 1 m) and by Debian's `prometheus-redis-exporter` (%s), one process whose multi-target `/scrape?target=unix://...` the driver requests once a second per instance, as a Prometheus scraping every second would. Each window starts 3 s after the watcher, with `CONFIG RESETSTAT` on every server; after %s, Redis's own `INFO commandstats` gives the calls and main-thread microseconds it served (per instance and second), `/proc/PID/stat` the watcher's CPU and `/proc/PID/status` its RSS. The order alternates between repeats; figures are medians over %d repeats, and ratios are guardian / exporter.\n\n",
		strings.TrimSpace(cmdOut(exporterBin, "--version")), r.params.sideWindow, r.params.sideRepeats)
	p("| Instances | Redis calls/s per instance (guardian / exporter) | Redis µs/s per instance (guardian / exporter) | ratio | Own CPU, %% of a core (guardian / exporter) | ratio | RSS (guardian / exporter) |\n|---|---|---|---|---|---|---|\n")
	for _, n := range sideSizes {
		g, ok1 := sideMedian(r.side, watchGuardian, n)
		e, ok2 := sideMedian(r.side, watchExporter, n)
		if !ok1 || !ok2 {
			continue
		}
		p("| %d | %.2f / %.2f | %.1f / %.1f | %.2f | %.2f / %.2f | %.2f | %.1f / %.1f MiB |\n", n, g.callsPerSec, e.callsPerSec,
			g.usecPerSec, e.usecPerSec, ratio(g.usecPerSec, e.usecPerSec), g.cpuPct, e.cpuPct, ratio(g.cpuPct, e.cpuPct),
			float64(g.rssKiB)/1024, float64(e.rssKiB)/1024)
	}
	p("\n")
}

// sideSummary adds figure 8's rows to the summary.
func (r *report) sideSummary(p func(string, ...any)) {
	for _, n := range sideSizes {
		g, ok1 := sideMedian(r.side, watchGuardian, n)
		e, ok2 := sideMedian(r.side, watchExporter, n)
		if !ok1 || !ok2 {
			continue
		}
		ru, rc := ratio(g.usecPerSec, e.usecPerSec), ratio(g.cpuPct, e.cpuPct)
		p("| 8 | Redis main-thread time, guardian at 1 s / exporter scraped at 1 s, %d instance(s) | <= 0.2 | %.2f (%.1f / %.1f µs/s per instance) | %s |\n",
			n, ru, g.usecPerSec, e.usecPerSec, met(ru <= 0.2))
		p("| 8 | Own CPU, guardian / exporter, %d instance(s) | <= 1 | %.2f (%.2f%% / %.2f%% of a core) | %s |\n",
			n, rc, g.cpuPct, e.cpuPct, met(rc <= 1))
	}
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}
