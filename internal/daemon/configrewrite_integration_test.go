package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
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

// TestConfigRewriteDuringHoldThenRestart: a CONFIG REWRITE during the hold wrote
// stop-writes-on-bgsave-error no into redis.conf; then the guardian was SIGKILLed
// and Redis restarted before the hold ended, so the new process reads the
// guardian's no from the file. That value is still the guardian's doing: the
// restarted guardian moves the entry to the new process and gives the setting
// back, runtime value and file, once saves succeed. The soak found Redis and
// redis.conf left with no for good when the entry was dropped as the old
// process's.
//
// The soak's servers take the setting on their command line, so a restarted one
// runs with yes whatever the file says: the entry follows it, the guardian finds
// its value not live and yields, and the yield puts the file right.
func TestConfigRewriteDuringHoldThenRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		live string // after the restart
	}{
		{name: "from_file", live: "no"},
		{name: "command_line", args: []string{"--" + policy.SettingStopWrites, "yes"}, live: "yes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			restartDuringHold(t, tc.args, tc.live)
		})
	}
}

func restartDuringHold(t *testing.T, args []string, live string) {
	srv := testredis.Start(t, testredis.Options{ConfigText: "stop-writes-on-bgsave-error yes\n", Args: args})
	c := srv.Client(t)
	stateDir, run := binaryConfig(t, srv)
	p := startBinary(t, run...)
	srv.FailFork(t)
	bgsave(t, c)
	// The entry names the process it was made on (run_id) once it is seen live.
	held := waitHeld(t, stateDir, policy.SettingStopWrites, func(ch remediate.Change) bool { return ch.Applied && ch.RunID != "" })
	if err := c.Do(ctxT(t), "CONFIG", "REWRITE").Err(); err != nil {
		t.Fatalf("CONFIG REWRITE: %v", err)
	}
	if got := fileSays(t, srv.ConfigFile, policy.SettingStopWrites); got != "no" {
		t.Fatalf("after CONFIG REWRITE the file says %q; the test needs the held no in it", got)
	}
	if err := p.signal(syscall.SIGKILL); err == nil {
		t.Fatalf("redis-guardian exited cleanly on SIGKILL; output:\n%s", p.out.String())
	}
	srv.Restart(t) // the fork limit dies with the old process
	if info := srv.Info(t); info["run_id"] == held.RunID {
		t.Fatalf("the run_id did not change across the restart (%s)", held.RunID)
	}
	if got := configGet(t, c, policy.SettingStopWrites); got != live {
		t.Fatalf("the restarted Redis has %s %s; the test needs %s live", policy.SettingStopWrites, got, live)
	}

	p = startBinary(t, run...)
	bgsave(t, c)
	srv.WaitFor(t, "a save to succeed", waitLong, testredis.SaveStatus("ok"))
	deadline := time.Now().Add(waitLong)
	for configGet(t, c, policy.SettingStopWrites) != "yes" || len(ledgerChanges(t, stateDir)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s live and the ledger holds %+v %s after the save, want yes and empty; guardian output:\n%s",
				policy.SettingStopWrites, configGet(t, c, policy.SettingStopWrites), ledgerChanges(t, stateDir), waitLong, p.out.String())
		}
		time.Sleep(poll)
	}
	if got := fileSays(t, srv.ConfigFile, policy.SettingStopWrites); got != "yes" {
		t.Errorf("after the undo the file says %q, want yes; guardian output:\n%s", got, p.out.String())
	}
}

// TestConfigRewriteDuringHoldThenOperatorRevert: a CONFIG REWRITE during the hold
// wrote the guardian's no into redis.conf, then the operator set the setting back
// by hand. The guardian yields to the operator's runtime value, and puts the file
// right too: the no there was the guardian's, and the next restart would bring it
// back with no ledger entry to give it back. (This is also where a guardian killed
// between an undo's CONFIG SET and its file repair lands when it starts again.)
func TestConfigRewriteDuringHoldThenOperatorRevert(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{ConfigText: "stop-writes-on-bgsave-error yes\n"})
	c := srv.Client(t)
	g := startGuardian(t, srv, guardianOpts{})
	srv.FailFork(t)
	bgsave(t, c)
	g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}, nil)
	waitConfig(t, c, policy.SettingStopWrites, "no")
	if err := c.Do(ctxT(t), "CONFIG", "REWRITE").Err(); err != nil {
		t.Fatalf("CONFIG REWRITE: %v", err)
	}
	if err := c.ConfigSet(ctxT(t), policy.SettingStopWrites, "yes").Err(); err != nil {
		t.Fatalf("CONFIG SET: %v", err)
	}
	g.waitEntry(fieldsEq{"event": string(events.RemedyYielded), "setting": policy.SettingStopWrites}, nil)
	g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "result": "config_rewrite"}, nil)
	if got := fileSays(t, srv.ConfigFile, policy.SettingStopWrites); got != "yes" {
		t.Errorf("after the yield the file says %q, want the operator's yes:\n%s", got, g.dump())
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("the ledger still holds %+v", ch)
	}
}

// waitHeld waits until the ledger's entry for setting satisfies ok (a zero
// Change when there is none) and returns it.
func waitHeld(t *testing.T, stateDir, setting string, ok func(remediate.Change) bool) remediate.Change {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		var got remediate.Change
		for _, ch := range ledgerChanges(t, stateDir) {
			if ch.Setting == setting {
				got = ch
			}
		}
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ledger's entry for %s is still %+v after %s", setting, got, waitLong)
		}
		time.Sleep(poll)
	}
}

// binaryConfig writes the config of a guardian binary that watches srv as
// instanceName with fast ticks, and returns its state dir and its run args
// (the same for every start, so a restarted binary finds its state).
func binaryConfig(t *testing.T, srv *testredis.Server) (stateDir string, run []string) {
	t.Helper()
	stateDir = t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{instanceName, srv.Socket})
	return stateDir, []string{"-c", cfg, "--state-dir", stateDir}
}
