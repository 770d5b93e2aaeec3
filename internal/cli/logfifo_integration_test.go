package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/check"
	"github.com/redis-guardian/redis-guardian/internal/cli"
	"github.com/redis-guardian/redis-guardian/internal/status"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// generous bounds a wait that a working guardian ends in well under a second; it
// is long so that a loaded machine never fails the test, and finite so that a hang
// fails it instead of the whole run.
const generous = 20 * time.Second

// TestLogFileFIFO: a FIFO as log_file used to block the open (no writer ever
// comes): the instance never ticked, check --timeout 2s never returned and
// SIGTERM did not stop the daemon. Now it is refused with a finding that names
// the path and the type, and the instance is watched without the log.
func TestLogFileFIFO(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	fifo := filepath.Join(t.TempDir(), "redis.log")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	port := testredis.FreePort(t)
	cfgFile := writeFile(t, "config.yaml", fmt.Sprintf(`interval: 200ms
metrics_listen: 127.0.0.1:%d
instances:
  - name: fifo
    addr: %q
    log_file: %q
`, port, srv.Socket, fifo), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb syncBuffer
	done := make(chan int, 1)
	args := []string{"run", "-c", cfgFile, "--state-dir", t.TempDir(), "--dry-run", "--log-format", "json"}
	go func() { done <- cli.Run(ctx, args, cli.Env{Stdout: &bytes.Buffer{}, Stderr: &errb}) }()
	stopped := false
	t.Cleanup(func() {
		if stopped {
			return
		}
		// A guardian stuck in open(2) of the FIFO returns from it when a writer
		// comes: keep opening one until it has stopped, so a failure ends.
		cancel()
		unblock := time.NewTicker(20 * time.Millisecond)
		defer unblock.Stop()
		deadline := time.After(generous)
		for {
			select {
			case <-done:
				return
			case <-deadline:
				t.Error("run did not stop even with the FIFO opened for writing")
				return
			case <-unblock.C:
				if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = f.Close()
				}
			}
		}
	})

	// The instance ticks (last_tick moves on) and has the finding.
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var first time.Time
	var finding status.Finding
	deadline := time.Now().Add(generous)
	for {
		in, ok := statusOf(base, "fifo")
		if ok && in.LastTick != nil {
			if first.IsZero() {
				first = *in.LastTick
			}
			for _, f := range in.Findings {
				if f.ID == policy.IDLogFileNotRegular {
					finding = f
				}
			}
			if finding.ID != "" && in.LastTick.After(first) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("within %s the instance did not tick twice with a %s finding (last status %+v, ok %v); log:\n%s",
				generous, policy.IDLogFileNotRegular, in, ok, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(finding.Summary, fifo+" is a FIFO, not a regular file") || finding.Severity != string(policy.Warning) {
		t.Errorf("finding %+v does not name the path and the type", finding)
	}
	if code := httpCode(base + "/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy answered %d, want 200", code)
	}

	// check returns, within its own deadline, with the same finding.
	type result struct {
		code     int
		out, err string
	}
	checked := make(chan result, 1)
	go func() {
		var out, errs bytes.Buffer
		code := cli.Run(context.Background(), []string{"check", "-c", cfgFile, "--timeout", "2s", "--format", "json"}, cli.Env{Stdout: &out, Stderr: &errs})
		checked <- result{code, out.String(), errs.String()}
	}()
	select {
	case r := <-checked:
		var res check.Result
		if err := json.Unmarshal([]byte(r.out), &res); err != nil {
			t.Fatalf("check exit %d: decode: %v\nstdout:\n%s\nstderr:\n%s", r.code, err, r.out, r.err)
		}
		f, ok := findingsOf(res)[policy.IDLogFileNotRegular]
		if r.code == check.UNKNOWN || !ok || !strings.Contains(f.Summary, fifo+" is a FIFO") {
			t.Errorf("check exit %d, finding %+v (found %v)\n%s", r.code, f, ok, r.out)
		}
		if len(res.Instances) != 1 || !strings.Contains(res.Instances[0].Log, "FIFO") {
			t.Errorf("check's log source does not say why the log is not read: %+v", res.Instances)
		}
	case <-time.After(generous):
		t.Fatalf("check --timeout 2s did not return within %s", generous)
	}

	// The daemon stops on cancel, as on SIGTERM.
	cancel()
	select {
	case code := <-done:
		stopped = true
		if code != 0 {
			t.Errorf("run exited %d\n%s", code, errb.String())
		}
	case <-time.After(generous):
		t.Fatalf("run did not stop within %s of cancel", generous)
	}
}

// statusOf asks the daemon's /-/status for one instance.
func statusOf(base, name string) (status.Instance, bool) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + status.Path)
	if err != nil {
		return status.Instance{}, false
	}
	defer resp.Body.Close()
	var r status.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return status.Instance{}, false
	}
	for _, in := range r.Instances {
		if in.Name == name {
			return in, true
		}
	}
	return status.Instance{}, false
}

func httpCode(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	return resp.StatusCode
}
