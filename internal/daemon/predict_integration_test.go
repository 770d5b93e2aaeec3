package daemon_test

import (
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// predictedFault is a fault the host shows before a save runs into it.
type predictedFault struct {
	name    string
	finding string // the prediction's finding, the toggle's reason
	inject  func(t *testing.T, srv *testredis.Server) (lift func())
}

var predictedFaults = []predictedFault{
	// The soft RLIMIT_NPROC of the running server drops to 1: its uid already has
	// more tasks (Linux counts threads), so the next fork fails with EAGAIN.
	{name: "nproc", finding: policy.IDForkNprocExhausted, inject: func(t *testing.T, srv *testredis.Server) func() { return srv.FailFork(t) }},
	// The data dir becomes root's: the save's temp file cannot be created (EACCES).
	{name: "permission_denied", finding: policy.IDDatadirNotWritable, inject: func(t *testing.T, srv *testredis.Server) func() { return srv.DenyDir(t) }},
}

// TestPredictedFaultsRejectNoWrite: for faults the host shows in advance, the
// guardian toggles stop-writes-on-bgsave-error before any save runs into them,
// so under a write load of 1000 writes/s the save that then fails rejects no
// write; after the fault the guardian's retry saves and the toggle is given back
// (after the predictive dwell), with the ledger empty.
func TestPredictedFaultsRejectNoWrite(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		for _, f := range predictedFaults {
			t.Run(b.Name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				predictedFaultRejectsNoWrite(t, b, f)
			})
		}
	}
}

func predictedFaultRejectsNoWrite(t *testing.T, b testredis.Build, f predictedFault) {
	srv := testredis.Start(t, testredis.Options{Build: b})
	c := srv.Client(t)
	g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond})
	g.waitTicks(1)
	w := srv.StartWriter(t, time.Millisecond)
	waitWrites(t, w, 50)

	lift := f.inject(t, srv)
	applied := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}, nil)
	if applied.str("remedy") != policy.RemedyStopWrites || applied.str("reason") != f.finding {
		t.Errorf("remedy_applied = %s, want stop_writes for %s", applied, f.finding)
	}
	raised := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": f.finding}, nil)
	if raised.str("severity") != string(policy.Critical) || raised.str("cause") == "" {
		t.Errorf("finding = %s, want critical with its numbers", raised)
	}
	// Now the save Redis would run at its next save point fails.
	_ = c.BgSave(ctxT(t)).Err()
	srv.WaitFor(t, "the save to fail", waitLong, testredis.SaveStatus("err"))
	waitWrites(t, w, 300)
	if st := w.Stats(); st.Rejected != 0 {
		t.Errorf("%d writes rejected (%v) for a fault the guardian predicted", st.Rejected, st.Errors)
	}

	lift()
	srv.WaitFor(t, "the guardian's retry to save", waitLong, testredis.SaveStatus("ok"))
	g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "setting": policy.SettingStopWrites}, nil)
	if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
		t.Errorf("%s = %q after the undo, want yes", policy.SettingStopWrites, got)
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("ledger still holds %+v", ch)
	}
	waitWrites(t, w, 100)
	if st := w.Stop(); st.Rejected != 0 {
		t.Errorf("%d writes rejected over the whole cycle (%v)", st.Rejected, st.Errors)
	}
}
