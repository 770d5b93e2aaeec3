package daemon_test

import (
	"os"
	"strings"
	"testing"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// fileSays is what Redis's config file says for a setting ("" when absent).
func fileSays(t *testing.T, path, setting string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return monitor.ParseConfigFile(string(b), []string{setting})[setting].Value
}

// TestConfigRewriteDuringHold: a CONFIG REWRITE (an operator's; Sentinel sends one
// at every failover) while the guardian holds stop-writes-on-bgsave-error no
// writes that value into redis.conf. The guardian raises a critical finding naming
// the file and line at once, and after it gives the setting back it runs CONFIG
// REWRITE so the next restart is protected again.
func TestConfigRewriteDuringHold(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{ConfigText: "# the admin's file\nstop-writes-on-bgsave-error yes\n"})
	c := srv.Client(t)
	g := startGuardian(t, srv, guardianOpts{})
	lift := srv.FailFork(t)
	bgsave(t, c)
	g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}, nil)
	waitConfig(t, c, policy.SettingStopWrites, "no")

	if err := c.Do(ctxT(t), "CONFIG", "REWRITE").Err(); err != nil {
		t.Fatalf("CONFIG REWRITE: %v", err)
	}
	if got := fileSays(t, srv.ConfigFile, policy.SettingStopWrites); got != "no" {
		t.Fatalf("after CONFIG REWRITE the file says %q; the test needs the held no in it", got)
	}
	f := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDHeldValueInConfigFile}, nil)
	if f.str("severity") != string(policy.Critical) || !strings.Contains(f.str("cause"), srv.ConfigFile+" line ") {
		t.Errorf("finding = %s, want critical, naming %s and the line", f, srv.ConfigFile)
	}

	lift()
	srv.WaitFor(t, "the guardian's retry to save", waitLong, testredis.SaveStatus("ok"))
	g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "setting": policy.SettingStopWrites}, nil)
	fixed := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "result": "config_rewrite"}, nil)
	if got := fileSays(t, srv.ConfigFile, policy.SettingStopWrites); got != "yes" {
		t.Errorf("after the undo the file says %q, want yes:\n%s", got, g.dump())
	}
	if !strings.Contains(fixed.String(), "stop-writes-on-bgsave-error") {
		t.Errorf("the repair does not log the lines it changed: %s", fixed)
	}
	g.waitEntry(fieldsEq{"event": string(events.FindingCleared), "finding": policy.IDHeldValueInConfigFile}, nil)
}

// TestConfigFileTurnsProtectionOff: a config file that says
// stop-writes-on-bgsave-error no, which the guardian does not hold, is reported.
func TestConfigFileTurnsProtectionOff(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{ConfigText: "stop-writes-on-bgsave-error no\n"})
	g := startGuardian(t, srv, guardianOpts{})
	f := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDConfigFileUnprotected}, nil)
	if !strings.Contains(f.str("cause"), srv.ConfigFile+" line 1") {
		t.Errorf("finding = %s, want it to name %s line 1", f, srv.ConfigFile)
	}
}
