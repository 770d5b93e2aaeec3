package daemon_test

import (
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// slowLedgerGuardian starts the guardian binary on srv with its state dir on a
// disk of its own, where the guardian may submit one write a second: a real blkio
// throttle on its process, as when the state dir shares a disk that Redis's saves
// keep busy. A durable ledger write (fsync) then takes a second or more.
func slowLedgerGuardian(t *testing.T, srv *testredis.Server) (p *proc, stateDir string) {
	t.Helper()
	stateDir = filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(stateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	dev := testredis.BlockDir(t, stateDir, "64M")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{"rg", srv.Socket})
	p = startBinary(t, "-c", cfg, "--state-dir", stateDir)
	p.waitOutput(eventRE(string(events.LogSource)))
	testredis.ThrottleWrites(t, p.cmd.Process.Pid, dev, "blkio.throttle.write_iops_device", 1)
	return p, stateDir
}

// stopWritesApplied matches the console line of stop_writes' change.
var stopWritesApplied = regexp.MustCompile(`"event":\s*"` + string(events.RemedyApplied) + `",\s*"remedy":\s*"` + policy.RemedyStopWrites + `"`)

// checkSlowDisk fails the test when the guardian logged its change (which comes
// after the durable write that marks it applied) sooner than the throttle allows:
// then the disk was not slow and the run proves nothing.
func checkSlowDisk(t *testing.T, since, logged time.Time) {
	t.Helper()
	if d := logged.Sub(since); d < 500*time.Millisecond {
		t.Fatalf("the guardian logged its change %s after the fault, durable ledger write included: the throttle did not slow its disk, so this run proves nothing", d)
	}
}

// checkLedgerHolds fails unless the ledger holds exactly the applied stop-writes
// toggle.
func checkLedgerHolds(t *testing.T, stateDir string) {
	t.Helper()
	all, err := remediate.ReadLedger(remediate.LedgerPath(stateDir, "rg"))
	if err != nil {
		t.Fatalf("the ledger is not readable: %v", err)
	}
	if len(all) != 1 || all[0].Setting != policy.SettingStopWrites || all[0].Value != "no" || !all[0].Applied {
		t.Errorf("ledger = %+v, want the applied stop-writes entry", all)
	}
}

// TestLiftNotBehindSlowLedger: a save child is killed under 1000 writes/s while
// the guardian's ledger is on a slow disk. The guardian must lift MISCONF as soon
// as the ledger entry is in place for every reader, and fsync it after: waiting
// for the disk first kept writes rejected for seconds (the CONFIG SET then even
// missed the tick's deadline, and every retry did the same). The entry must be on
// disk, applied, and the later durable write must really have waited for the
// throttle (else the disk was not slow and the run proves nothing).
func TestLiftNotBehindSlowLedger(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	srv.SlowChild(t)
	p, stateDir := slowLedgerGuardian(t, srv)

	w := srv.StartWriter(t, time.Millisecond)
	deadline := time.Now().Add(waitLong)
	for w.Stats().OK < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("the writer got %+v within %s", w.Stats(), waitLong)
		}
		time.Sleep(poll)
	}
	bgsave(t, c)
	srv.KillChild(t, syscall.SIGKILL)
	killed := time.Now()
	// The guardian logs the change after marking it applied with a durable write.
	p.waitOutput(stopWritesApplied)
	logged := time.Now()
	time.Sleep(50 * time.Millisecond) // writes after the lift, to end the window
	st := w.Stop()
	if st.Rejected > 0 && st.FirstOKAfterReject.IsZero() {
		t.Fatalf("writes still rejected after the guardian logged its change: %+v", st)
	}
	// Before the fault is lifted: the guardian's retry would then succeed and give
	// the setting back, emptying the ledger.
	checkLedgerHolds(t, stateDir)
	unslowChild(t, srv, c)

	checkSlowDisk(t, killed, logged)
	// Time to writable goes by the wake-up, INFO, CONFIG GET, the unsynced write
	// and CONFIG SET: milliseconds. An fsync first waits for the throttle, a
	// second at least (one write a second): the bound is half of that, in time,
	// not in writes (a loaded machine slows the writer too).
	toWritable := st.FirstOKAfterReject.Sub(st.FirstReject)
	if st.Rejected > 0 && toWritable > maxToWritableSlowLedger {
		t.Errorf("%d writes rejected, %s to writable (%v): the lift waited for the ledger's fsync", st.Rejected, toWritable, st.Errors)
	}
	t.Logf("%d writes rejected, %s to writable; the change was logged, after its durable write, %s after the kill", st.Rejected, toWritable, logged.Sub(killed))
}

// maxToWritableSlowLedger is half the time a durable write takes on the
// throttled disk (one write a second): a lift that waits for one cannot make it.
const maxToWritableSlowLedger = 500 * time.Millisecond

// TestPredictedToggleBehindSlowLedger: a predicted fault (the data dir denied to
// Redis) is not urgent, so its toggle is recorded durably first, which takes
// longer than the tick's deadline on this disk. The CONFIG SET that follows must
// still be made: it used to run on the spent deadline, fail, be rolled back, and
// fail again at every tick, so MISCONF was never lifted ahead of the save.
func TestPredictedToggleBehindSlowLedger(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	p, stateDir := slowLedgerGuardian(t, srv)
	srv.DenyDir(t)
	denied := time.Now()
	p.waitOutput(stopWritesApplied)
	checkSlowDisk(t, denied, time.Now())
	if got := configGet(t, c, policy.SettingStopWrites); got != "no" {
		t.Errorf("%s = %s after the guardian's change, want no", policy.SettingStopWrites, got)
	}
	checkLedgerHolds(t, stateDir)
	if info := srv.Info(t); info["rdb_last_bgsave_status"] != "ok" {
		t.Errorf("a save failed before the prediction was acted on (rdb_last_bgsave_status %s): the toggle was not the predicted one", info["rdb_last_bgsave_status"])
	}
}
