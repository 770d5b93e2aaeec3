package daemon_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/supervisor"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestRestoreOnStopMarker: the package's removal script marks the state dir and
// stops the service; the guardian then restores every held change as it stops,
// even a toggle whose fault persists (a plain stop keeps that one). It runs under
// systemd and can reach Redis, where an rpm 4.20 scriptlet cannot.
func TestRestoreOnStopMarker(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	stateDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, cfg, stateDir, "", [2]string{"rg", srv.Socket})
	g := startBinary(t, "-c", cfg, "--interval", "200ms")
	g.waitOutput(eventRE(string(events.Started)))
	srv.FailFork(t) // lifted only by the cleanup: the fault lasts through the stop
	bgsave(t, c)
	g.waitOutput(eventRE(string(events.RemedyApplied)))
	waitConfig(t, c, policy.SettingStopWrites, "no")

	if err := os.WriteFile(filepath.Join(stateDir, supervisor.RestoreOnStopMarker), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, g.out.String())
	}
	if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
		t.Errorf("%s = %q after a stop with the removal marker, want the original yes:\n%s", policy.SettingStopWrites, got, g.out.String())
	}
	if ch := ledgerChanges(t, stateDir); len(ch) != 0 {
		t.Errorf("the ledger still holds %+v", ch)
	}
}
