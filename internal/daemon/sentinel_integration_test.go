package daemon_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// trio is a master, its replica (both TCP, both started from a config file that
// CONFIG REWRITE can write) and a Sentinel watching them.
type trio struct {
	master, replica *testredis.Server
	sent            *testredis.Sentinel
}

// trioConfig is the instances' config file. The diskless sync delay is 0 so a
// converted old master resyncs at once instead of after the default 5 s.
const trioConfig = "stop-writes-on-bgsave-error yes\nrepl-diskless-sync-delay 0\n"

func startTrio(t *testing.T) trio {
	t.Helper()
	master := testredis.Start(t, testredis.Options{TCP: true, ConfigText: trioConfig})
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	replica := testredis.Start(t, testredis.Options{TCP: true, ConfigText: trioConfig, Args: []string{"--replicaof", host, port}})
	replica.WaitFor(t, "the replica's link to its master", waitLong, func(info map[string]string) bool {
		return info["master_link_status"] == "up"
	})
	s := testredis.StartSentinel(t, master.Addr)
	s.WaitReplica(replica.Addr)
	return trio{master: master, replica: replica, sent: s}
}

// misconf reports whether err is a MISCONF reply.
func misconf(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "MISCONF") }

// TestSentinelNoFailoverWithGuardian: a failed save on a master makes it answer
// PING with MISCONF, and Sentinel (down-after 2 s) fails it over: on Redis alone
// that is shown first, or the guarded run proves nothing. With the guardian on
// the master (and one on the replica, as in production) the same fault under
// write load gives no +sdown over three times down-after, the master stays the
// master, and once the fault is lifted the guardian gives the setting back.
func TestSentinelNoFailoverWithGuardian(t *testing.T) {
	t.Parallel()

	// Redis alone.
	u := startTrio(t)
	umc := u.master.Client(t)
	w0 := u.master.StartWriter(t, time.Millisecond)
	waitWrites(t, w0, 50)
	liftU := u.master.FailFork(t)
	faultAt := time.Now()
	bgsave(t, umc)
	waitFor(t, "PING on the unguarded master to answer MISCONF", func() bool { return misconf(umc.Ping(ctxT(t)).Err()) })
	sdown := u.sent.WaitEvent("+sdown master "+testredis.SentinelMaster, 10*time.Second)
	sw := u.sent.WaitEvent("+switch-master "+testredis.SentinelMaster, 12*time.Second)
	switched := time.Since(faultAt)
	if got := u.sent.MasterAddr(); got != u.replica.Addr {
		t.Fatalf("Redis alone: Sentinel reports master %s after +switch-master, want the replica %s", got, u.replica.Addr)
	}
	t.Logf("Redis alone: failover seen %s after the fault:\n  %s\n  %s", switched.Round(time.Millisecond), sdown, sw)
	w0.Stop()
	liftU()
	u.sent.Stop()

	// With the guardian.
	tr := startTrio(t)
	mc, rc := tr.master.Client(t), tr.replica.Client(t)
	rg := startGuardian(t, tr.replica, guardianOpts{})
	rg.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyReplicaGuard}, nil)
	mg := startGuardian(t, tr.master, guardianOpts{})
	mg.waitTicks(1)
	w := tr.master.StartWriter(t, time.Millisecond)
	waitWrites(t, w, 50)

	lift := tr.master.FailFork(t)
	faultAt = time.Now()
	bgsave(t, mc)
	tr.master.WaitFor(t, "the master's save to fail", waitLong, testredis.SaveStatus("err"))
	applied := mg.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyStopWrites}, nil)
	t.Logf("guarded: stop_writes applied %s after the fault", applied.Time.Sub(faultAt).Round(time.Millisecond))

	// Three times down-after from the fault, PING watched all along.
	window := 3 * testredis.SentinelDownAfter
	pingFails, pings := 0, 0
	for time.Since(faultAt) < window {
		pings++
		if err := mc.Ping(ctxT(t)).Err(); err != nil {
			pingFails++
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := tr.master.Info(t)["rdb_last_bgsave_status"]; got != "err" {
		t.Fatalf("the fault did not last the window: rdb_last_bgsave_status %s", got)
	}
	if sd := tr.sent.Events("+sdown master " + testredis.SentinelMaster); len(sd) > 0 {
		t.Errorf("guarded: Sentinel marked the master down:\n%s\nguardian:\n%s", strings.Join(sd, "\n"), mg.dump())
	}
	if sw := tr.sent.Events("+switch-master " + testredis.SentinelMaster); len(sw) > 0 {
		t.Errorf("guarded: Sentinel failed over:\n%s", strings.Join(sw, "\n"))
	}
	if got := tr.sent.MasterAddr(); got != tr.master.Addr {
		t.Errorf("guarded: Sentinel reports master %s, want %s", got, tr.master.Addr)
	}
	if f := tr.sent.MasterFlags(); f != "master" {
		t.Errorf("guarded: SENTINEL MASTER flags %q, want master", f)
	}
	st := w.Stats()
	misconfWindow := time.Duration(0)
	if !st.FirstReject.IsZero() {
		misconfWindow = st.LastReject.Sub(st.FirstReject)
	}
	t.Logf("guarded: over %s: PING failed %d/%d, writes ok %d rejected %d %v (rejects spanned %s)",
		window, pingFails, pings, st.OK, st.Rejected, st.Errors, misconfWindow.Round(time.Millisecond))
	if misconfWindow >= testredis.SentinelDownAfter {
		t.Errorf("guarded: writes were rejected over %s, want less than down-after %s", misconfWindow, testredis.SentinelDownAfter)
	}

	lift()
	tr.master.WaitFor(t, "the guardian's retry to save", waitLong, testredis.SaveStatus("ok"))
	mg.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "remedy": policy.RemedyStopWrites}, nil)
	waitConfig(t, mc, policy.SettingStopWrites, "yes")
	if ch := ledgerChanges(t, mg.StateDir); len(ch) != 0 {
		t.Errorf("the master's ledger still holds %+v after the save succeeded", ch)
	}
	if got := fileSays(t, tr.master.ConfigFile, policy.SettingStopWrites); got != "yes" {
		t.Errorf("the master's config file says %s %q, want yes", policy.SettingStopWrites, got)
	}
	if got := configGet(t, rc, policy.SettingStopWrites); got != "no" {
		t.Errorf("the replica's %s = %q, want the replica guard's no", policy.SettingStopWrites, got)
	}
	if sd := tr.sent.Events("+sdown"); len(sd) > 0 {
		t.Errorf("guarded: Sentinel marked an instance down during the run:\n%s", strings.Join(sd, "\n"))
	}
	w.Stop()
}

// role is INFO replication's view: "master", or "slave of host:port (link)".
func role(t *testing.T, srv *testredis.Server) string {
	t.Helper()
	i := srv.Info(t)
	if i["role"] == "master" {
		return "master"
	}
	return fmt.Sprintf("slave of %s:%s (link %s)", i["master_host"], i["master_port"], i["master_link_status"])
}

// checkLedgerLive asserts that every ledger entry's value is live, and that
// stop-writes-on-bgsave-error is either its original (yes) or held, both live and
// in the config file.
func checkLedgerLive(t *testing.T, name string, srv *testredis.Server, g *guardian) {
	t.Helper()
	c := srv.Client(t)
	held := map[string]string{}
	for _, ch := range ledgerChanges(t, g.StateDir) {
		held[ch.Setting] = ch.Value
		if live := configGet(t, c, ch.Setting); !policy.SameValue(ch.Setting, live, ch.Value) {
			t.Errorf("%s: the ledger holds %s %s (%s), but the live value is %s", name, ch.Setting, ch.Value, ch.Remedy, live)
		}
	}
	live := configGet(t, c, policy.SettingStopWrites)
	if _, ok := held[policy.SettingStopWrites]; !ok && live != "yes" {
		t.Errorf("%s: %s is %s live and no ledger entry holds it", name, policy.SettingStopWrites, live)
	}
	file := fileSays(t, srv.ConfigFile, policy.SettingStopWrites)
	if v, ok := held[policy.SettingStopWrites]; file == "no" && (!ok || v != "no") {
		t.Errorf("%s: the config file says %s no and nothing holds it (ledger %v)", name, policy.SettingStopWrites, held)
	}
}

// TestFailoverWhileHolding: the master holds stop-writes-on-bgsave-error no
// (failed save) when Sentinel fails over (SENTINEL FAILOVER), sending CONFIG
// REWRITE to the promoted replica and, once it is converted, to the old master.
// After the fault is lifted and things settle: the new master has yes live and in
// its file, the old master (now a replica) is protected (no, held in its ledger;
// its file's no is a held value, reported), and no setting is changed without a
// ledger entry.
func TestFailoverWhileHolding(t *testing.T) {
	t.Parallel()
	tr := startTrio(t)
	mc, rc := tr.master.Client(t), tr.replica.Client(t)
	rg := startGuardian(t, tr.replica, guardianOpts{})
	rg.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyReplicaGuard}, nil)
	mg := startGuardian(t, tr.master, guardianOpts{})
	mg.waitTicks(1)
	w := tr.master.StartWriter(t, time.Millisecond)
	waitWrites(t, w, 50)

	lift := tr.master.FailFork(t)
	bgsave(t, mc)
	mg.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyStopWrites}, nil)
	waitConfig(t, mc, policy.SettingStopWrites, "no")

	start := time.Now()
	if err := tr.sent.C.Failover(ctxT(t), testredis.SentinelMaster).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER %s: %v", testredis.SentinelMaster, err)
	}
	sw := tr.sent.WaitEvent("+switch-master "+testredis.SentinelMaster, 15*time.Second)
	t.Logf("failover done after %s: %s", time.Since(start).Round(time.Millisecond), sw)
	if got := tr.sent.MasterAddr(); got != tr.replica.Addr {
		t.Fatalf("Sentinel reports master %s after the failover, want the old replica %s", got, tr.replica.Addr)
	}

	// The new master: the replica guard is given back, the file put right.
	rg.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "remedy": policy.RemedyReplicaGuard}, nil)
	waitConfig(t, rc, policy.SettingStopWrites, "yes")

	// The old master: Sentinel converts it to a replica of the new master (after
	// it has reported itself as master for 8 s) and rewrites its config file.
	_, newPort, _ := net.SplitHostPort(tr.replica.Addr)
	tr.master.WaitFor(t, "the old master to replicate the new one", 30*time.Second, func(i map[string]string) bool {
		return i["role"] == "slave" && i["master_port"] == newPort && i["master_link_status"] == "up"
	})
	t.Logf("old master converted after %s: %s", time.Since(start).Round(time.Millisecond), strings.Join(tr.sent.Events("+convert-to-slave"), "; "))
	w.Stop()

	lift()
	tr.master.WaitFor(t, "a good save on the old master", waitLong, testredis.SaveStatus("ok"))
	// Settle: a few ticks of both guardians after the last change.
	mg.waitTicks(3)
	rg.waitTicks(3)

	// The new master.
	if r := role(t, tr.replica); r != "master" {
		t.Errorf("the old replica is %s, want master", r)
	}
	if got := configGet(t, rc, policy.SettingStopWrites); got != "yes" {
		t.Errorf("new master: %s = %q live, want yes", policy.SettingStopWrites, got)
	}
	if got := fileSays(t, tr.replica.ConfigFile, policy.SettingStopWrites); got != "yes" {
		t.Errorf("new master: its config file says %s %q, want yes\nguardian:\n%s", policy.SettingStopWrites, got, rg.dump())
	}
	if ch := ledgerChanges(t, rg.StateDir); len(ch) != 0 {
		t.Errorf("new master: the ledger still holds %+v", ch)
	}
	checkLedgerLive(t, "new master", tr.replica, rg)
	if fixed := rg.entries(fieldsEq{"event": string(events.RemedyApplied), "result": "config_rewrite"}); len(fixed) > 0 {
		t.Logf("new master: the guardian put the file right after Sentinel's CONFIG REWRITE: %s", fixed[0])
	}

	// The old master, now a replica.
	if r := role(t, tr.master); !strings.HasPrefix(r, "slave") {
		t.Errorf("the old master is %s, want a replica", r)
	}
	if got := configGet(t, mc, policy.SettingStopWrites); got != "no" {
		t.Errorf("old master (replica): %s = %q live, want no (a replica that fails a save must not crash)", policy.SettingStopWrites, got)
	}
	// Its save succeeded since: the hold is the replica guard's now (handed over
	// from stop_writes), so the ledger says why it is held.
	waitFor(t, "the demoted master's hold to be replica_guard's", func() bool {
		ch := ledgerChanges(t, mg.StateDir)
		return len(ch) == 1 && ch[0].Remedy == policy.RemedyReplicaGuard
	})
	ch := ledgerChanges(t, mg.StateDir)
	if len(ch) != 1 || ch[0].Setting != policy.SettingStopWrites || ch[0].Value != "no" || ch[0].Original != "yes" {
		t.Errorf("old master (replica): ledger %+v, want one entry holding %s no (original yes)", ch, policy.SettingStopWrites)
	}
	checkLedgerLive(t, "old master", tr.master, mg)
	file := fileSays(t, tr.master.ConfigFile, policy.SettingStopWrites)
	t.Logf("old master (replica): its config file says %s %q", policy.SettingStopWrites, file)
	if file == "no" {
		if f := mg.entries(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDHeldValueInConfigFile}); len(f) == 0 {
			t.Errorf("old master: the file holds the held no and held_value_in_config_file was not raised:\n%s", mg.dump())
		}
	}
	// Sentinel sees the old master as a healthy replica: it answers PING.
	tr.sent.WaitReplica(tr.master.Addr)
	if sd := tr.sent.Events("+sdown"); len(sd) > 0 {
		t.Errorf("Sentinel marked an instance down:\n%s", strings.Join(sd, "\n"))
	}
	for _, s := range []*testredis.Server{tr.master, tr.replica} {
		if panicked(t, s) {
			t.Errorf("%s panicked:\n%s", s.Addr, s.LogTail(40))
		}
	}
}
