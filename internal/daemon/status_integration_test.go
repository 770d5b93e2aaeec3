package daemon_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/status"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// exitCode is the exit status runGuardianCommand's error carries (0 for none).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("not an exit status: %v", err)
	}
	return 0
}

// TestStatusCommand: `redis-guardian status` asks the running guardian (its
// /-/status on metrics_listen) what it holds and sees; with no guardian running it
// says so and shows the ledger. Exit 1 while something is held or critical, 0
// when all is well.
func TestStatusCommand(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	stateDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	port := testredis.FreePort(t)
	writeConfig(t, cfg, stateDir, fmt.Sprintf("metrics_listen: 127.0.0.1:%d\n", port), [2]string{"rg", srv.Socket})
	listen := fmt.Sprintf("--metrics-listen=127.0.0.1:%d", port)
	g := startBinary(t, "-c", cfg, "--interval", "200ms", listen)
	g.waitOutput(eventRE(string(events.Started)))

	statusOf := func(when string) (status.Report, int, string) {
		t.Helper()
		out, err := runGuardianCommand(t, "status", "-c", cfg, "--format", "json")
		var r status.Report
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
			t.Fatalf("%s: status --format json: %v\n%s", when, jerr, out)
		}
		text, _ := runGuardianCommand(t, "status", "-c", cfg)
		return r, exitCode(t, err), text
	}

	lift := srv.FailFork(t)
	bgsave(t, c)
	g.waitOutput(eventRE(string(events.RemedyApplied)))
	r, code, text := statusOf("holding")
	if r.Source != "daemon" || code != 1 || len(r.Instances) != 1 || len(r.Instances[0].Held) != 1 {
		t.Fatalf("while holding: source %q, exit %d, report %+v; want the daemon's, exit 1, one held change", r.Source, code, r)
	}
	h := r.Instances[0].Held[0]
	if h.Setting != policy.SettingStopWrites || h.Value != "no" || h.Original != "yes" || h.Redis != srv.Socket || r.Instances[0].LastTick == nil {
		t.Errorf("held %+v (last tick %v), want stop-writes-on-bgsave-error no on %s", h, r.Instances[0].LastTick, srv.Socket)
	}
	if !strings.Contains(text, "holds stop-writes-on-bgsave-error no (original yes)") || !strings.Contains(text, "is running") {
		t.Errorf("text status:\n%s", text)
	}

	// Stopped while the fault lasts: the toggle is kept, the ledger says so.
	if err := g.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	r, code, text = statusOf("stopped")
	if r.Source != "ledger" || code != 1 || len(r.Instances) != 1 || len(r.Instances[0].Held) != 1 {
		t.Errorf("stopped: source %q, exit %d, report %+v; want the ledger's, exit 1, the kept toggle", r.Source, code, r)
	}
	if !strings.Contains(text, "no running redis-guardian answered") {
		t.Errorf("stopped, text status does not say no guardian runs:\n%s", text)
	}

	// All well again: the guardian saves, restores, and status exits 0.
	lift()
	g2 := startBinary(t, "-c", cfg, "--interval", "200ms", listen)
	g2.waitOutput(eventRE(string(events.RemedyUndone)))
	waitFor(t, "status to exit 0", func() bool {
		_, code, _ := statusOf("restored")
		return code == 0
	})
	if err := g2.signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}
