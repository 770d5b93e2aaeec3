package daemon_test

// Integration tests: a real redis-server (as the redis user), real faults from
// internal/testredis, and the guardian wired exactly as `redis-guardian run` wires it.
// They prove what the remedies promise: writes rejected for at most one tick, the
// setting restored after the next good save, nothing held across restarts that the
// ledger does not know about, and nothing deleted that is not a dead child's file.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// maxMisconfWindow is "about one tick" at the 1s interval.
const maxMisconfWindow = 1500 * time.Millisecond

// rdbFault is one real way an RDB save fails.
type rdbFault struct {
	name  string
	opts  testredis.Options
	cause string // what the finding's cause must name
	// prepare runs before the guardian starts.
	prepare func(t *testing.T, srv *testredis.Server, c *redis.Client)
	// inject starts the fault and makes a save fail (or, for a full disk, be about to).
	inject func(t *testing.T, srv *testredis.Server, c *redis.Client) (lift func())
	// predictive: the guardian may toggle before the save fails (snapshot_wont_fit).
	predictive bool
	// sharedState puts the guardian's state dir on the data dir's file system, as
	// every package install does (/var/lib/redis and /var/lib/redis-guardian on /var).
	sharedState bool
}

var rdbFaults = []rdbFault{
	{
		name:  "fork_failure",
		cause: "Resource temporarily unavailable",
		inject: func(t *testing.T, srv *testredis.Server, c *redis.Client) func() {
			lift := srv.FailFork(t)
			bgsave(t, c)
			return lift
		},
	},
	{
		name:  "disk_full",
		opts:  testredis.Options{TmpfsSize: "256k"},
		cause: "No space left on device",
		// With no dump.rdb the estimate is used_memory (~1 MiB), which never fits a
		// 256k disk: save once so the estimate is the file's real size.
		prepare: func(t *testing.T, srv *testredis.Server, c *redis.Client) { saveOnce(t, srv, c) },
		inject: func(t *testing.T, srv *testredis.Server, c *redis.Client) func() {
			lift := srv.FillDisk(t)
			bgsave(t, c)
			return lift
		},
		predictive: true,
	},
	{
		// The ledger shares the full disk: it must still record the toggle.
		name:    "disk_full_ledger_on_same_disk",
		opts:    testredis.Options{TmpfsSize: "1m"},
		cause:   "No space left on device",
		prepare: func(t *testing.T, srv *testredis.Server, c *redis.Client) { saveOnce(t, srv, c) },
		inject: func(t *testing.T, srv *testredis.Server, c *redis.Client) func() {
			lift := srv.FillDisk(t)
			bgsave(t, c)
			return lift
		},
		predictive:  true,
		sharedState: true,
	},
	{
		name:  "permission_denied",
		cause: "Permission denied",
		inject: func(t *testing.T, srv *testredis.Server, c *redis.Client) func() {
			lift := srv.DenyDir(t)
			bgsave(t, c)
			return lift
		},
	},
	{
		name:    "child_killed",
		cause:   "signal 9",
		prepare: func(t *testing.T, srv *testredis.Server, c *redis.Client) { srv.SlowChild(t) },
		inject: func(t *testing.T, srv *testredis.Server, c *redis.Client) func() {
			bgsave(t, c)
			srv.KillChild(t, syscall.SIGKILL)
			srv.WaitFor(t, "the killed save to be recorded as failed", waitLong, testredis.SaveStatus("err"))
			return func() { unslowChild(t, srv, c) }
		},
	},
}

// unslowChild lifts SlowChild: new children are fast, and a slow one the guardian's
// retry may have started before is aborted with SIGUSR1 (which Redis does not count
// as a failure, so the guardian simply retries).
func unslowChild(t *testing.T, srv *testredis.Server, c *redis.Client) {
	t.Helper()
	configSet(t, c, "rdb-key-save-delay", "0")
	set := time.Now()
	deadline := set.Add(waitLong)
	for {
		info := srv.Info(t)
		if info["rdb_bgsave_in_progress"] == "0" {
			return
		}
		if time.Since(set) > time.Second {
			srv.KillChild(t, syscall.SIGUSR1)
			set = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatal("a slow save child kept running after rdb-key-save-delay 0")
		}
		time.Sleep(poll)
	}
}

// TestStopWritesUnderRealFaults injects each fault under a continuous write load and
// checks the whole cycle: MISCONF for at most one tick, the guardian's own BGSAVE
// retry after the fault is lifted, the setting restored and the ledger emptied.
func TestStopWritesUnderRealFaults(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		for _, f := range rdbFaults {
			t.Run(b.Name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				opts := f.opts
				opts.Build = b
				stopWritesUnderFault(t, f, opts)
			})
		}
	}
}

// stopWritesUnderFault is one fault on one server build.
func stopWritesUnderFault(t *testing.T, f rdbFault, opts testredis.Options) {
	srv := testredis.Start(t, opts)
	c := srv.Client(t)
	if f.prepare != nil {
		f.prepare(t, srv, c)
	}
	var o guardianOpts
	if f.sharedState {
		o.StateDir = filepath.Join(srv.DataDir, "guardian-state")
	}
	g := startGuardian(t, srv, o)
	g.waitTicks(1)
	w := srv.StartWriter(t, time.Millisecond)
	waitWrites(t, w, 50)

	lift := f.inject(t, srv, c)
	applied := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}, nil)
	waitConfig(t, c, policy.SettingStopWrites, "no")
	// Keep writing a while under the toggle: none of these may be rejected.
	waitWrites(t, w, 300)
	held := w.Stats()

	// (b) lift the fault: the guardian's retry (not the test) saves, then it
	// restores the setting and empties the ledger.
	lift()
	srv.WaitFor(t, "the guardian's retry to save", waitLong, testredis.SaveStatus("ok"))
	undone := g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "setting": policy.SettingStopWrites}, nil)
	if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
		t.Errorf("%s = %q after the undo, want yes", policy.SettingStopWrites, got)
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("ledger still holds %+v after the undo", ch)
	}
	if ledgerExists(g.StateDir, instanceName) {
		t.Errorf("ledger file %s still exists after the undo", remediate.LedgerPath(g.StateDir, instanceName))
	}
	waitWrites(t, w, 100)
	final := w.Stop()

	// (a) the MISCONF window.
	window := time.Duration(0)
	if held.Rejected > 0 {
		window = held.LastReject.Sub(held.FirstReject)
	}
	t.Logf("%s: %d writes rejected over %s (%v); toggle %s (reason %s) %s after the first reject; %d ok writes",
		f.name, held.Rejected, window.Round(time.Millisecond), held.Errors, applied.Time.Format("15:04:05.000"),
		applied.str("reason"), sinceFirst(held, applied.Time), final.OK)
	if f.predictive && applied.str("reason") == policy.IDSnapshotWontFit && held.Rejected > 0 &&
		held.FirstReject.Before(applied.Time) {
		t.Logf("%s: the save failed before the predictive toggle (the one-tick bound applies)", f.name)
	}
	if held.Rejected > 0 {
		if window > maxMisconfWindow {
			t.Errorf("writes were rejected for %s (%d writes), want at most %s", window, held.Rejected, maxMisconfWindow)
		}
		// The toggle is logged after its CONFIG SET: a write sent after that must
		// be accepted. (When its reply was read does not matter: on a loaded
		// machine that may be much later.)
		if held.LastRejectSent.After(applied.Time) {
			t.Errorf("a write sent at %s was rejected, after the toggle at %s", held.LastRejectSent.Format("15:04:05.000"), applied.Time.Format("15:04:05.000"))
		}
		if n := held.Errors["MISCONF"]; n != held.Rejected {
			t.Errorf("rejections by kind %v, want only MISCONF", held.Errors)
		}
	}
	if final.Rejected != held.Rejected {
		t.Errorf("%d more writes were rejected after the toggle (at %s), e.g. around the undo: %v",
			final.Rejected-held.Rejected, final.LastReject.Format("15:04:05.000"), final.Errors)
	}

	// (c) the log tells the story.
	if applied.str("old_value") != "yes" || applied.str("new_value") != "no" || applied.str("cause") == "" {
		t.Errorf("remedy_applied = %s, want old_value yes, new_value no and a cause", applied)
	}
	if undone.str("old_value") != "no" || undone.str("new_value") != "yes" {
		t.Errorf("remedy_undone = %s, want old_value no, new_value yes", undone)
	}
	if len(g.entries(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyBgsaveRetry, "result": "Background saving started"})) == 0 {
		t.Errorf("no successful BGSAVE retry by the guardian in the log:\n%s", g.dump())
	}
	misconf := g.entries(fieldsEq{"event": "finding_raised", "finding": policy.IDMisconfRDB})
	// A toggle made on the prediction may still lose the race with the failing
	// save by a write or two (the save fails within a millisecond of the
	// reading): the guardian then never saw a MISCONF state to report.
	predicted := applied.str("reason") != policy.IDMisconfRDB
	if len(misconf) == 0 && !predicted {
		t.Errorf("no finding_raised for %s:\n%s", policy.IDMisconfRDB, g.dump())
	}
	// The toggle turns misconf_rdb into bgsave_failed; either one may carry
	// the log's cause, depending on whether the tick saw the log line yet.
	var causes []string
	named := false
	for _, id := range []string{policy.IDMisconfRDB, policy.IDBgsaveFailed} {
		for _, e := range g.entries(fieldsEq{"event": "finding_raised", "finding": id}) {
			causes = append(causes, id+": "+e.str("cause"))
			named = named || strings.Contains(e.str("cause"), f.cause)
		}
	}
	if !named {
		t.Errorf("no misconf_rdb/bgsave_failed finding names %q; causes: %q", f.cause, causes)
	}
}

// waitWrites waits until the writer has n more successful writes.
func waitWrites(t *testing.T, w *testredis.Writer, n int) {
	t.Helper()
	want := w.Stats().OK + n
	deadline := time.Now().Add(waitLong)
	for {
		st := w.Stats()
		if st.OK >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer reached %d ok writes, want %d within %s (rejected %d: %v)", st.OK, want, waitLong, st.Rejected, st.Errors)
		}
		time.Sleep(poll)
	}
}

func sinceFirst(st testredis.WriteStats, at time.Time) string {
	if st.FirstReject.IsZero() {
		return "(no reject)"
	}
	return at.Sub(st.FirstReject).Round(time.Millisecond).String()
}

// TestBinaryRestartsWhileHolding runs the real binary: a SIGKILL and a graceful stop
// while the fault persists keep the toggle (no MISCONF window across either), and a
// start after the fault is lifted reconciles the ledger: it saves and restores.
func TestBinaryRestartsWhileHolding(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	guardianBinary(t)
	stateDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	const name = "rg"
	yaml := fmt.Sprintf(`interval: 200ms
state_dir: %s
remedies:
  bgsave_retry:
    initial_backoff: 200ms
    max_backoff: 1s
  stop_writes:
    predictive_dwell: 500ms
  oom_shield:
    enabled: false
instances:
  - name: %s
    addr: %s
`, stateDir, name, srv.Socket)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", cfg, "--state-dir", stateDir, "--interval", "200ms"}
	holds := func(when string) {
		t.Helper()
		if got := configGet(t, c, policy.SettingStopWrites); got != "no" {
			t.Fatalf("%s: %s = %q, want the guardian's no", when, policy.SettingStopWrites, got)
		}
		all, err := remediate.ReadLedger(remediate.LedgerPath(stateDir, name))
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		var ch remediate.Change
		for _, c := range all {
			if c.Setting == policy.SettingStopWrites {
				ch = c
			}
		}
		if ch.Original != "yes" || ch.Value != "no" || ch.Remedy != policy.RemedyStopWrites {
			t.Fatalf("%s: ledger holds %+v, want %s yes -> no", when, all, policy.SettingStopWrites)
		}
	}

	liftFork := srv.FailFork(t)
	a := startBinary(t, args...)
	a.waitOutput(eventRE("started"))
	bgsave(t, c)
	a.waitOutput(eventRE(string(events.RemedyApplied)))
	waitFor(t, "the ledger file", func() bool { return ledgerExists(stateDir, name) })
	holds("after the toggle")
	w := srv.StartWriter(t, time.Millisecond)
	waitWrites(t, w, 50)

	// SIGKILL: no final pass at all. Redis keeps the toggle, the ledger keeps the entry.
	if err := a.signal(syscall.SIGKILL); err == nil {
		t.Fatal("redis-guardian exited cleanly after SIGKILL?")
	}
	holds("after SIGKILL")

	// A new guardian adopts the entry while the fault persists (its retries still
	// fail); a graceful stop then keeps the toggle, because its reason persists.
	b := startBinary(t, args...)
	b.waitOutput(regexp.MustCompile(`BGSAVE retry could not fork yet`))
	holds("after the restart")
	if err := b.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("redis-guardian after SIGTERM: %v\n%s", err, b.out.String())
	}
	if !eventRE(string(events.RemedyHeld)).MatchString(b.out.String()) {
		t.Errorf("no remedy_held event at the graceful stop:\n%s", b.out.String())
	}
	if eventRE(string(events.RemedyYielded)).MatchString(b.out.String()) || eventRE(string(events.RemedyUndone)).MatchString(b.out.String()) {
		t.Errorf("the restarted guardian yielded or undid the held toggle:\n%s", b.out.String())
	}
	holds("after SIGTERM")
	waitWrites(t, w, 50)
	if st := w.Stop(); st.Rejected != 0 {
		t.Errorf("%d writes rejected across the restarts (%v), want none", st.Rejected, st.Errors)
	} else {
		t.Logf("restarts while holding: %d writes, none rejected", st.OK)
	}

	// Lift the fault; the next start reconciles: its retry saves, it restores.
	liftFork()
	cc := startBinary(t, args...)
	srv.WaitFor(t, "the restarted guardian's retry to save", waitLong, testredis.SaveStatus("ok"))
	waitConfig(t, c, policy.SettingStopWrites, "yes")
	waitFor(t, "the ledger file to go", func() bool { return !ledgerExists(stateDir, name) })
	cc.waitOutput(eventRE(string(events.RemedyUndone)))
	if err := cc.signal(syscall.SIGTERM); err != nil {
		t.Errorf("redis-guardian after SIGTERM: %v", err)
	}
	if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
		t.Errorf("%s = %q after the final stop, want yes", policy.SettingStopWrites, got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitLong, what)
		}
		time.Sleep(poll)
	}
}

// TestOperatorWins: while the guardian holds the toggle, an operator sets the value
// back and saves; the guardian yields (drops its ledger entry) and never overrides.
func TestOperatorWins(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	g := startGuardian(t, srv, guardianOpts{})
	lift := srv.FailFork(t)
	bgsave(t, c)
	g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}, nil)
	waitConfig(t, c, policy.SettingStopWrites, "no")

	configSet(t, c, policy.SettingStopWrites, "yes") // the operator
	lift()
	bgsave(t, c) // the operator's save ("already in progress" if the retry won: fine)
	srv.WaitFor(t, "a good save", waitLong, testredis.SaveStatus("ok"))

	y := g.waitEntry(fieldsEq{"event": string(events.RemedyYielded), "setting": policy.SettingStopWrites}, nil)
	if y.str("new_value") != "yes" {
		t.Errorf("remedy_yielded = %s, want new_value yes (the live value)", y)
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("ledger still holds %+v after yielding", ch)
	}
	g.waitTicks(3)
	if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
		t.Errorf("%s = %q, want the operator's yes", policy.SettingStopWrites, got)
	}
	if u := g.entries(fieldsEq{"event": string(events.RemedyUndone), "setting": policy.SettingStopWrites}); len(u) != 0 {
		t.Errorf("the guardian undid a setting it no longer owned: %v", u)
	}
	if n := len(g.entries(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites})); n != 1 {
		t.Errorf("%d toggles, want 1:\n%s", n, g.dump())
	}
}

// TestDryRun: the guardian says what it would do and changes nothing.
func TestDryRun(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	g := startGuardian(t, srv, guardianOpts{DryRun: true})
	w := srv.StartWriter(t, time.Millisecond)
	srv.FailFork(t)
	bgsave(t, c)
	e := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites, "dry_run": "true"}, nil)
	if !strings.Contains(e.Message, "would") {
		t.Errorf("dry-run entry %s does not say it would", e)
	}
	// Writes stay rejected well after the would-be toggle.
	waitFor(t, "writes still rejected after the dry-run decision", func() bool {
		return w.Stats().LastReject.After(e.Time.Add(500 * time.Millisecond))
	})
	st := w.Stop()
	t.Logf("dry-run: %d writes rejected (%v), %d ok", st.Rejected, st.Errors, st.OK)
	if st.Errors["MISCONF"] == 0 {
		t.Errorf("no MISCONF rejections in dry-run: %v", st.Errors)
	}
	if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
		t.Errorf("%s = %q in dry-run, want yes", policy.SettingStopWrites, got)
	}
	ents, err := os.ReadDir(g.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("dry-run wrote to the state dir: %v", ents)
	}
	if n := len(g.entries(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites})); n != 1 {
		t.Errorf("%d dry-run toggles, want 1 (the memory ledger holds it):\n%s", n, g.dump())
	}
}

// TestWithoutConfigRights: an ACL user that may not use CONFIG gets a clear finding,
// and no retry storm.
func TestWithoutConfigRights(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
	}{
		{"no_config", "-config"},
		{"no_config_set", "-config|set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{})
			c := srv.Client(t)
			if err := c.Do(ctxT(t), "ACL", "SETUSER", "guard", "on", ">pw", "~*", "&*", "+@all", tc.rule).Err(); err != nil {
				t.Fatalf("ACL SETUSER: %v", err)
			}
			g := startGuardian(t, srv, guardianOpts{Username: "guard", Password: "pw"})
			g.waitTicks(1)
			srv.FailFork(t)
			bgsave(t, c)
			srv.WaitFor(t, "the failed save", waitLong, testredis.SaveStatus("err"))
			ticks := g.observe(5 * time.Second)
			t.Logf("%s: observed 5s, %d ticks", tc.name, ticks)

			failed := g.entries(fieldsEq{"event": string(events.RemedyFailed)})
			if len(failed) > 2 {
				t.Errorf("%d remedy_failed events in ~5s, want at most 2 (a retry storm):\n%s", len(failed), g.dump())
			}
			if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
				t.Errorf("%s = %q, want yes (the guardian cannot change it)", policy.SettingStopWrites, got)
			}
			if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
				t.Errorf("ledger claims %+v though nothing could be applied", ch)
			}
			switch tc.rule {
			case "-config":
				cu := g.entries(fieldsEq{"event": "finding_raised", "finding": policy.IDCommandUnavailable})
				if len(cu) != 1 {
					t.Errorf("%d command_unavailable findings logged, want 1:\n%s", len(cu), g.dump())
				} else if !strings.Contains(cu[0].str("cause"), "NOPERM") {
					t.Errorf("command_unavailable cause %q does not name NOPERM", cu[0].str("cause"))
				}
			case "-config|set":
				if len(failed) == 0 {
					t.Fatalf("no remedy_failed for the denied CONFIG SET:\n%s", g.dump())
				}
				if !strings.Contains(failed[0].str("error"), "NOPERM") {
					t.Errorf("remedy_failed error %q does not name NOPERM", failed[0].str("error"))
				}
			}
		})
	}
}

// TestRewriteDeferral: under write load the guardian sets auto-aof-rewrite-percentage
// 0, restores it once load is low, and then runs the rewrite the AOF has grown for.
func TestRewriteDeferral(t *testing.T) {
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-benchmark (redis-tools) is required under CI=true: %v", err)
		}
		t.Skipf("redis-benchmark (redis-tools): %v", err)
	}
	srv := testredis.Start(t, testredis.Options{AppendOnly: true})
	c := srv.Client(t)
	orig := configGet(t, c, policy.SettingRewritePercent)
	// Stats every 500 ms, for the 2 s window the test uses (production windows
	// are 10 s, the default info_refresh).
	g := startGuardian(t, srv, guardianOpts{InfoRefresh: 500 * time.Millisecond, Remedies: func(rs policy.Remedies) {
		r := policy.ConfigOf[*policy.RewriteDeferralConfig](rs)
		r.HighOps = 2000
		r.LowOps = 500
		r.Window = 2 * time.Second
		r.Dwell = 2 * time.Second
	}})

	var out bytes.Buffer
	bench := exec.Command("redis-benchmark", "-s", srv.Socket, "-t", "set", "-n", "3000000", "-c", "8", "-P", "16", "-r", "100000", "-q")
	bench.Stdout, bench.Stderr = &out, &out
	bench.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := bench.Start(); err != nil {
		t.Fatalf("start redis-benchmark: %v", err)
	}
	benchDone := make(chan struct{})
	go func() { _ = bench.Wait(); close(benchDone) }()
	stopBench := func() {
		select {
		case <-benchDone:
		default:
			_ = bench.Process.Kill()
			<-benchDone
		}
	}
	t.Cleanup(stopBench)

	applied := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingRewritePercent}, nil)
	if applied.str("new_value") != "0" || applied.str("old_value") != orig {
		t.Errorf("remedy_applied = %s, want %s -> 0", applied, orig)
	}
	waitConfig(t, c, policy.SettingRewritePercent, "0")
	// Make the grown AOF due for a rewrite without waiting for 64 MiB.
	configSet(t, c, "auto-aof-rewrite-min-size", "1mb")
	rewrites0 := srv.Info(t)["aof_rewrites"]
	srv.WaitFor(t, "the AOF to grow past 4x its base", waitLong, func(i map[string]string) bool {
		cur, _ := strconv.ParseInt(i["aof_current_size"], 10, 64)
		base, _ := strconv.ParseInt(i["aof_base_size"], 10, 64)
		return cur > 4*max(base, 1) && cur > 2<<20
	})
	stopBench()
	stopped := time.Now()

	undone := g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "setting": policy.SettingRewritePercent}, nil)
	t.Logf("deferral: applied %s (%s); load stopped, restored after %s (%s)", applied.Time.Format("15:04:05.000"),
		applied.str("cause"), undone.Time.Sub(stopped).Round(time.Millisecond), undone.str("cause"))
	if d := undone.Time.Sub(stopped); d > 12*time.Second {
		t.Errorf("restored %s after the load stopped, want within ~10s", d)
	}
	if got := configGet(t, c, policy.SettingRewritePercent); got != orig {
		t.Errorf("%s = %q after the undo, want %q", policy.SettingRewritePercent, got, orig)
	}
	srv.WaitFor(t, "a rewrite after the deferral", waitLong, func(i map[string]string) bool {
		return i["aof_rewrites"] != rewrites0 && i["aof_rewrite_in_progress"] == "0"
	})
	bgr := g.entries(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyRewriteDeferral, "setting": ""})
	if len(bgr) > 0 {
		t.Logf("the guardian ran BGREWRITEAOF: %s", bgr[0].str("cause"))
	} else {
		t.Logf("Redis's own auto-rewrite ran first (the guardian's BGREWRITEAOF was not needed):\n%s", g.dump())
	}
	if f := g.entries(fieldsEq{"event": string(events.RemedyFailed)}); len(f) > 0 {
		t.Errorf("remedy_failed during the deferral: %v", f)
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("ledger still holds %+v", ch)
	}
}

// TestTempCleanup: a dead child's temp file is removed; nothing else ever is.
func TestTempCleanup(t *testing.T) {
	minAge0 := func(rs policy.Remedies) { policy.ConfigOf[*policy.TempCleanupConfig](rs).MinAge = 0 }

	t.Run("stale_file_removed", func(t *testing.T) {
		t.Parallel()
		srv := testredis.Start(t, testredis.Options{})
		c := srv.Client(t)
		// Big values, so the child has written bytes by the time its parent dies.
		srv.Fill(t, 120, 32<<10)
		srv.SlowChild(t)
		bgsave(t, c)
		child := srv.ChildPID(t, 10*time.Second)
		tmp := filepath.Join(srv.DataDir, fmt.Sprintf("temp-%d.rdb", child))
		waitFor(t, tmp+" to have data", func() bool { fi, err := os.Stat(tmp); return err == nil && fi.Size() > 0 })
		srv.KillParent(t)
		srv.Restart(t) // kills the orphaned child with the old process group
		// The orphan is reaped by init, not by us: wait until its pid is gone.
		waitFor(t, fmt.Sprintf("the killed child %d to be reaped", child), func() bool {
			_, err := os.Stat(fmt.Sprintf("/proc/%d", child))
			return os.IsNotExist(err)
		})
		fi, err := os.Stat(tmp)
		if err != nil {
			t.Fatalf("the dead child's temp file is gone before the guardian ran: %v", err)
		}

		g := startGuardian(t, srv, guardianOpts{Remedies: minAge0})
		e := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyTempCleanup, "path": tmp}, nil)
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Errorf("%s still there after the event (stat: %v)", tmp, err)
		}
		if got, want := e.str("bytes_freed"), strconv.FormatInt(fi.Size(), 10); got != want {
			t.Errorf("bytes_freed = %s, want %s", got, want)
		}
		t.Logf("removed %s, %s bytes", tmp, e.str("bytes_freed"))
	})

	t.Run("never_removes_live_or_foreign_files", func(t *testing.T) {
		t.Parallel()
		srv := testredis.Start(t, testredis.Options{AppendOnly: true})
		c := srv.Client(t)
		saveOnce(t, srv, c) // a real dump.rdb
		aofDir := filepath.Join(srv.DataDir, "appendonlydir")
		decoys := []string{
			filepath.Join(srv.DataDir, "dump.rdb"),
			filepath.Join(srv.DataDir, "temp-notredis.txt"),
			// A Redis temp name whose pid is alive (this test process).
			filepath.Join(srv.DataDir, fmt.Sprintf("temp-rewriteaof-bg-%d.aof", os.Getpid())),
			filepath.Join(aofDir, "appendonly.aof.manifest"),
		}
		for _, p := range decoys[1:3] {
			if err := os.WriteFile(p, []byte("not yours\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		before := map[string][]byte{}
		for _, p := range decoys {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("decoy: %v", err)
			}
			before[p] = b
		}
		srv.SlowChild(t)
		bgsave(t, c)
		child := srv.ChildPID(t, 10*time.Second)
		live := filepath.Join(srv.DataDir, fmt.Sprintf("temp-%d.rdb", child))
		waitFor(t, live+" to exist", func() bool { _, err := os.Stat(live); return err == nil })

		g := startGuardian(t, srv, guardianOpts{Remedies: minAge0})
		g.waitTicks(3)
		if _, err := os.Stat(live); err != nil {
			t.Errorf("the live child's %s was touched: %v", live, err)
		}
		if srv.Info(t)["rdb_bgsave_in_progress"] != "1" {
			t.Errorf("the live save did not survive the guardian's ticks")
		}
		// Now without a child: only the pid and name rules protect the decoys.
		srv.KillChild(t, syscall.SIGUSR1)
		srv.WaitFor(t, "the aborted save to end", waitLong, func(i map[string]string) bool { return i["rdb_bgsave_in_progress"] == "0" })
		g.waitTicks(3)

		for _, p := range decoys {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if !bytes.Equal(b, before[p]) {
				t.Errorf("%s was changed", p)
			}
		}
		if del := g.entries(fieldsEq{"remedy": policy.RemedyTempCleanup}); len(del) != 0 {
			t.Errorf("temp_cleanup acted: %v", del)
		}
	})
}
