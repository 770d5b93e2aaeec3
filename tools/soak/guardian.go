package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// guardian is the real redis-guardian binary run as a subprocess, so the soak can
// SIGKILL it and start it again on the same config, state dir and runtime dir.
type guardian struct {
	bin, config, stateDir, dir string
	onCrash                    func(msg string)

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	expected bool // the soak signalled it: its exit is no crash
	exitErr  error
	starts   int
}

// buildGuardian compiles ./cmd/redis-guardian into dir.
func buildGuardian(dir string) (string, error) {
	bin := filepath.Join(dir, "redis-guardian")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/redis-guardian").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/redis-guardian: %w: %s", err, out)
	}
	return bin, nil
}

// writeGuardianConfig writes the config the guardian runs with: the instances'
// sockets, a state dir and runtime dir of the run's own, no metrics listener (the
// observer never asks the guardian anything), the shipped defaults otherwise.
func writeGuardianConfig(dir string, names, sockets []string) (config, stateDir string, err error) {
	stateDir = filepath.Join(dir, "state")
	runtimeDir := filepath.Join(dir, "run")
	var b strings.Builder
	fmt.Fprintf(&b, "mode: enforce\nstate_dir: %s\nruntime_dir: %s\nmetrics_listen: \"\"\ninstances:\n", stateDir, runtimeDir)
	for i := range names {
		fmt.Fprintf(&b, "  - name: %s\n    addr: %s\n", names[i], sockets[i])
	}
	config = filepath.Join(dir, "guardian.yaml")
	if err := os.WriteFile(config, []byte(b.String()), 0o600); err != nil {
		return "", "", fmt.Errorf("write guardian config: %w", err)
	}
	return config, stateDir, nil
}

// start starts the guardian; its output goes to dir/guardian.log, read only to
// show its tail when it crashed.
func (g *guardian) start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	log, err := os.OpenFile(filepath.Join(g.dir, "guardian.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open guardian log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(g.bin, "run", "-c", g.config, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start guardian: %w", err)
	}
	g.cmd, g.done, g.expected = cmd, make(chan struct{}), false
	g.starts++
	done := g.done
	go func() {
		err := cmd.Wait()
		g.mu.Lock()
		g.exitErr = err
		expected := g.expected
		g.mu.Unlock()
		close(done)
		if !expected {
			g.onCrash(fmt.Sprintf("guardian (pid %d) exited by itself: %v; log tail:\n%s", cmd.Process.Pid, err, tail(filepath.Join(g.dir, "guardian.log"), 15)))
		}
	}()
	return nil
}

// signal sends sig to the running guardian, marking its exit as the soak's doing,
// and waits up to wait for the exit.
func (g *guardian) signal(sig syscall.Signal, wait time.Duration) error {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.expected = true
	g.mu.Unlock()
	if cmd == nil {
		return errors.New("guardian not started")
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal guardian: %w", err)
	}
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("guardian still running %s after %s", wait, sig)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if sig == syscall.SIGTERM && g.exitErr != nil {
		return fmt.Errorf("guardian's clean stop: %w", g.exitErr)
	}
	return nil
}

// pid returns the running guardian's pid, 0 when none runs.
func (g *guardian) pid() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		return 0
	}
	select {
	case <-g.done:
		return 0
	default:
		return g.cmd.Process.Pid
	}
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
