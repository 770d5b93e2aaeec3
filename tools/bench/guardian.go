package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// inproc is one guardian process run in the driver's process: one instance per
// server, built as `redis-guardian run` builds them (internal/instance) with the
// shipped defaults and one configuration (so one state and one runtime directory,
// whose fork slots the instances share), plus a tick counter and the log entries,
// which the binary does not expose.
type inproc struct {
	close  func()
	ticks  atomic.Int64
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan error
	loops  int
	once   sync.Once
}

type inprocOpts struct {
	// interval and configRefresh are the shipped defaults when zero.
	interval      time.Duration
	configRefresh time.Duration
	// remedies edits the shipped defaults (nil: keep them).
	remedies func(policy.Remedies)
}

func startInproc(t *benchT, srv *testredis.Server, o inprocOpts) *inproc {
	t.Helper()
	if o.configRefresh == 0 {
		o.configRefresh = time.Minute
	}
	return startFleet(t, []*testredis.Server{srv}, o)
}

// startFleet runs one in-process guardian watching srvs (instances bench0..).
func startFleet(t *benchT, srvs []*testredis.Server, o inprocOpts) *inproc {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := config.Default()
	if o.interval > 0 {
		cfg.Interval = o.interval
	}
	if o.configRefresh > 0 {
		cfg.ConfigRefresh = o.configRefresh
	}
	cfg.StateDir, cfg.RuntimeDir = t.TempDir(), t.TempDir()
	g := &inproc{logs: logs, done: make(chan error, len(srvs)), loops: len(srvs)}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	var closers []func()
	g.close = func() {
		for _, c := range closers {
			c()
		}
	}
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Errorf("guardian: %v", err)
		}
		g.close()
	})
	for i, srv := range srvs {
		in := cfg.Instances[0]
		in.Name, in.Addr = "bench"+strconv.Itoa(i), srv.Socket
		if len(srvs) == 1 {
			in.Name = "bench"
		}
		in.Remedies = in.Remedies.Clone()
		if o.remedies != nil {
			o.remedies(in.Remedies)
		}
		b, err := instance.Build(cfg, in, instance.Options{Log: zap.New(core), Report: func(daemon.TickReport) { g.ticks.Add(1) }})
		if err != nil {
			g.loops = i
			t.Fatalf("build the guardian's instance %s: %v", in.Name, err)
		}
		closers = append(closers, b.Close)
		go func() { g.done <- b.Loop.Run(ctx) }()
	}
	return g
}

func (g *inproc) stop() error {
	var err error
	g.once.Do(func() {
		g.cancel()
		timeout := time.After(15 * time.Second)
		for range g.loops {
			select {
			case e := <-g.done:
				err = errors.Join(err, e)
			case <-timeout:
				err = errors.Join(err, errors.New("guardian loop did not return within 15s of cancel"))
				return
			}
		}
	})
	return err
}

// waitTicks waits until n ticks have completed in all.
func (g *inproc) waitTicks(t *benchT, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for g.ticks.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("guardian completed %d ticks, want %d within 20s", g.ticks.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// nextTick waits for the next tick to complete and returns the tick count.
func (g *inproc) nextTick(t *benchT) int64 {
	t.Helper()
	n := g.ticks.Load()
	g.waitTicks(t, n+1)
	return g.ticks.Load()
}

// applied returns the time of the first remedy_applied for stop-writes, if any.
func (g *inproc) applied() (time.Time, string, bool) {
	for _, e := range g.logs.All() {
		m := e.ContextMap()
		if m[events.FieldKey] == string(events.RemedyApplied) && m["setting"] == policy.SettingStopWrites {
			reason, _ := m["reason"].(string)
			return e.Time, reason, true
		}
	}
	return time.Time{}, "", false
}

// raised returns the time of the first finding_raised for one of ids, if any.
func (g *inproc) raised(ids ...string) (time.Time, bool) {
	for _, e := range g.logs.All() {
		m := e.ContextMap()
		if m[events.FieldKey] != string(events.FindingRaised) {
			continue
		}
		for _, id := range ids {
			if m["finding"] == id {
				return e.Time, true
			}
		}
	}
	return time.Time{}, false
}

// binGuardian is the real binary, optionally under /usr/bin/time -v.
type binGuardian struct {
	cmd      *exec.Cmd
	pid      int // the guardian's own pid (the child of time when timed)
	timeOut  string
	stderr   *os.File
	stopped  bool
	exitErr  error
	waitDone chan struct{}
}

// writeConfig writes a config file watching the given sockets.
func writeConfig(dir string, sockets []string, interval time.Duration) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "interval: %s\nmode: enforce\nstate_dir: %s\ninstances:\n", interval, filepath.Join(dir, "state"))
	for i, s := range sockets {
		fmt.Fprintf(&b, "  - name: i%d\n    addr: %s\n", i, s)
	}
	p := filepath.Join(dir, "guardian.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write guardian config: %w", err)
	}
	return p, nil
}

func startBinary(t *benchT, bin string, sockets []string, interval time.Duration, timed bool) *binGuardian {
	t.Helper()
	dir := t.TempDir()
	cfg, err := writeConfig(dir, sockets, interval)
	if err != nil {
		t.Fatalf("%v", err)
	}
	args := []string{bin, "run", "-c", cfg, "--log-level", "warn"}
	g := &binGuardian{waitDone: make(chan struct{})}
	if timed {
		g.timeOut = filepath.Join(dir, "time.txt")
		args = append([]string{"/usr/bin/time", "-v", "-o", g.timeOut}, args...)
	}
	g.stderr, err = os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatalf("create guardian log: %v", err)
	}
	g.cmd = exec.Command(args[0], args[1:]...)
	g.cmd.Stdout, g.cmd.Stderr = g.stderr, g.stderr
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start guardian: %v", err)
	}
	go func() { g.exitErr = g.cmd.Wait(); close(g.waitDone) }()
	t.Cleanup(func() { _ = g.stop() })
	g.pid = g.cmd.Process.Pid
	if timed {
		// time forks the guardian: signal and measure the guardian itself.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if kids := childPIDs(g.cmd.Process.Pid); len(kids) > 0 {
				g.pid = kids[0]
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no guardian process under /usr/bin/time after 5s")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return g
}

// stop sends SIGTERM (the guardian's final pass runs) and waits.
func (g *binGuardian) stop() error {
	if g.stopped {
		return g.exitErr
	}
	g.stopped = true
	_ = syscall.Kill(g.pid, syscall.SIGTERM)
	select {
	case <-g.waitDone:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(g.pid, syscall.SIGKILL)
		<-g.waitDone
		return errors.New("guardian did not stop within 15s of SIGTERM")
	}
	_ = g.stderr.Close()
	return g.exitErr
}

// cpuTicks returns utime+stime of pid in clock ticks (USER_HZ, 100 on Linux).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat of %d: no comm", pid)
	}
	f := strings.Fields(s[i+1:])
	// Fields after comm: state(0) ... utime(11) stime(12).
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat of %d: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse stat of %d: %w", pid, err)
	}
	return u + st, nil
}

func childPIDs(ppid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", ppid, ppid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// timeReport reads the fields of /usr/bin/time -v the report uses.
func timeReport(path string) (maxRSSKiB int64, userSys time.Duration, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read /usr/bin/time output: %w", err)
	}
	var user, sys float64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		switch k {
		case "Maximum resident set size (kbytes)":
			maxRSSKiB, _ = strconv.ParseInt(v, 10, 64)
		case "User time (seconds)":
			user, _ = strconv.ParseFloat(v, 64)
		case "System time (seconds)":
			sys, _ = strconv.ParseFloat(v, 64)
		}
	}
	if maxRSSKiB == 0 {
		return 0, 0, fmt.Errorf("no maximum RSS in %s", path)
	}
	return maxRSSKiB, time.Duration((user + sys) * float64(time.Second)), nil
}
