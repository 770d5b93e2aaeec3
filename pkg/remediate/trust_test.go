package remediate

import (
	"context"
	"errors"
	"testing"

	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// errTimeout stands for a reply lost to the command timeout.
var errTimeout = errors.New("i/o timeout")

// TestSetLostReply: after a failed or timed-out SET the live value is read again;
// the entry goes only when the original is live.
func TestSetLostReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		applies   bool // the SET takes effect although its reply fails
		getFails  bool // the read-back fails too
		wantEntry bool
		wantOK    bool
	}{
		{name: "applied, reply lost", applies: true, wantEntry: true, wantOK: true},
		{name: "not applied", wantEntry: false},
		{name: "read-back fails too", applies: true, getFails: true, wantEntry: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := NewMemLedger()
			srv := newConfigServer(map[string]string{policy.SettingStopWrites: "yes"})
			sets := 0
			srv.onSet = func(setting, value string) error {
				sets++
				if tc.applies {
					srv.config[setting] = value
				}
				return errTimeout
			}
			inner := srv.reply
			srv.reply = func(args []string) (any, error) {
				if tc.getFails && sets > 0 && len(args) == 3 && args[1] == "GET" {
					return nil, errTimeout
				}
				return inner(args)
			}
			e, _ := newExecutor(t, srv, l)
			out := e.Execute(context.Background(), setStopWrites)
			if out.OK != tc.wantOK {
				t.Errorf("outcome OK = %v (%s), want %v", out.OK, out.Err, tc.wantOK)
			}
			c, held := l.Get(policy.SettingStopWrites)
			if held != tc.wantEntry {
				t.Fatalf("entry kept = %v, want %v (live %q)", held, tc.wantEntry, srv.config[policy.SettingStopWrites])
			}
			if held && c.Original != "yes" {
				t.Errorf("entry %+v lost its original", c)
			}
		})
	}
}

// TestUndoLostReply: an undo whose reply is lost but which took effect removes the
// entry; one that did not keeps it.
func TestUndoLostReply(t *testing.T) {
	t.Parallel()
	for _, applies := range []bool{true, false} {
		l := NewMemLedger()
		_ = l.Record(change(policy.SettingStopWrites, "yes", "no"))
		srv := newConfigServer(map[string]string{policy.SettingStopWrites: "no"})
		srv.onSet = func(setting, value string) error {
			if applies {
				srv.config[setting] = value
			}
			return errTimeout
		}
		e, _ := newExecutor(t, srv, l)
		out := e.Execute(context.Background(), undoStopWrites)
		_, held := l.Get(policy.SettingStopWrites)
		if held == applies || out.OK != applies {
			t.Errorf("undo applied=%v: entry kept %v, outcome %+v", applies, held, out)
		}
	}
}

// TestReconcileOperatorRevert: once the guardian's value was seen live, a revert
// to the original is an operator's choice: yielded and reported, not "never applied".
func TestReconcileOperatorRevert(t *testing.T) {
	t.Parallel()
	for _, applied := range []bool{true, false} {
		l := NewMemLedger()
		c := change(policy.SettingStopWrites, "yes", "no")
		c.Applied = applied
		_ = l.Record(c)
		e, _ := newExecutor(t, newConfigServer(map[string]string{}), l)
		got := e.Reconcile(monitor.RedisReading{Config: monitor.RedisConfig{policy.SettingStopWrites: "yes"}}, true)
		if len(l.All()) != 0 {
			t.Errorf("applied=%v: entry kept after the setting went back", applied)
		}
		if yielded := len(got) == 1 && got[0] == (policy.Yield{Remedy: policy.RemedyStopWrites, Setting: policy.SettingStopWrites}); yielded != applied {
			t.Errorf("applied=%v: yielded to an operator = %v (%q)", applied, yielded, got)
		}
	}
}

// TestRedisRestartedDropsEntry: after a restart (another run_id) the live value
// comes from the config file: the guardian neither undoes it nor claims it.
func TestRedisRestartedDropsEntry(t *testing.T) {
	t.Parallel()
	l := NewMemLedger()
	c := change(policy.SettingStopWrites, "yes", "no")
	c.RunID, c.Applied = "aaaa", true
	_ = l.Record(c)
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "no"}) // the operator's file says no
	e, logs := newExecutor(t, srv, l)
	got := e.Reconcile(monitor.RedisReading{Info: monitor.Info{RunID: "bbbb"}, Config: monitor.RedisConfig{policy.SettingStopWrites: "no"}}, true)
	if len(got) != 0 || len(l.All()) != 0 {
		t.Errorf("yielded %q, ledger %+v; want nothing held and no yield", got, l.All())
	}
	if srv.config[policy.SettingStopWrites] != "no" || len(srv.Calls()) != 0 {
		t.Errorf("the guardian touched Redis after its restart: calls %q", srv.Calls())
	}
	if countEvents(logs, events.RemedyYielded) != 1 {
		t.Error("the dropped entry was not reported")
	}
}

// TestChangeOnARestartedRedisIsRecordedAsItsOwn: a decision made from the
// reading of one process, carried out after Redis restarted, lands on the new
// process: its entry must name that one, or the next reconcile drops it as the
// old process's and the guardian's value stays on Redis with no record. The soak
// (seed 20261206) left `save ""` on a restarted Valkey that way: no snapshot
// until the next restart.
func TestChangeOnARestartedRedisIsRecordedAsItsOwn(t *testing.T) {
	t.Parallel()
	l := NewMemLedger()
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "yes"})
	e, _ := newExecutor(t, srv, l)
	e.Reconcile(monitor.RedisReading{Info: monitor.Info{RunID: "aaaa"}, Config: monitor.RedisConfig{policy.SettingStopWrites: "yes"}}, true)
	srv.info = "# Server\r\nrun_id:bbbb\r\n" // restarted since that reading
	if o := e.Execute(context.Background(), setStopWrites); o.Err != "" {
		t.Fatalf("set: %v", o.Err)
	}
	e.Reconcile(monitor.RedisReading{Info: monitor.Info{RunID: "bbbb"}, Config: monitor.RedisConfig{policy.SettingStopWrites: "no"}}, true)
	c, ok := l.Get(policy.SettingStopWrites)
	if !ok || c.RunID != "bbbb" || !c.Applied {
		t.Errorf("ledger %+v, want the change held on the process it was made on (run_id bbbb, applied)", l.All())
	}
	if srv.config[policy.SettingStopWrites] != "no" {
		t.Errorf("live %s = %q, want the guardian's no", policy.SettingStopWrites, srv.config[policy.SettingStopWrites])
	}
}

// TestStrandedEntry: an entry made on another address is not undone against the
// new one, not offered to the policy as held, and never overwritten.
func TestStrandedEntry(t *testing.T) {
	t.Parallel()
	l := NewMemLedger()
	c := change(policy.SettingStopWrites, "yes", "no")
	c.Addr = "10.0.0.9:6379"
	_ = l.Record(c)
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "yes"})
	e, _ := newExecutor(t, srv, l)
	e.Reconcile(monitor.RedisReading{Config: monitor.RedisConfig{policy.SettingStopWrites: "yes"}}, true)
	if _, ok := e.Stranded()[policy.SettingStopWrites]; !ok {
		t.Fatal("the entry of another address is not reported stranded")
	}
	if len(e.Held()) != 0 {
		t.Errorf("Held() = %+v, want the stranded entry left out", e.Held())
	}
	if err := e.RestoreAll(context.Background(), "restore"); err == nil {
		t.Error("RestoreAll against the new address succeeded; it must refuse the stranded entry")
	}
	if out := e.Execute(context.Background(), setStopWrites); out.OK {
		t.Error("a set overwrote the stranded entry, the only record of the old Redis's change")
	}
	if got, ok := l.Get(policy.SettingStopWrites); !ok || got.Addr != c.Addr {
		t.Errorf("ledger entry = %+v, want the stranded one kept", got)
	}
	for _, call := range srv.Calls() {
		if len(call) > 1 && call[1] == "SET" {
			t.Errorf("the new Redis got %q", call)
		}
	}
}

// TestAdoptHandsAHoldOver: a set for a value already held by another remedy
// re-records the entry as the new remedy's, keeping its original, without a SET.
func TestAdoptHandsAHoldOver(t *testing.T) {
	t.Parallel()
	l := NewMemLedger()
	c := change(policy.SettingStopWrites, "yes", "no")
	_ = l.Record(c)
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "no"})
	e, _ := newExecutor(t, srv, l)
	out := e.Execute(context.Background(), policy.Decision{Remedy: policy.RemedyReplicaGuard, Action: policy.ActSet,
		Setting: policy.SettingStopWrites, Value: "no", Reason: policy.IDReplicaPanicRisk})
	got, ok := l.Get(policy.SettingStopWrites)
	if !out.OK || !ok || got.Remedy != policy.RemedyReplicaGuard || got.Reason != policy.IDReplicaPanicRisk || got.Original != "yes" {
		t.Errorf("outcome %+v, entry %+v; want the entry handed to replica_guard with its original", out, got)
	}
	for _, call := range srv.Calls() {
		if len(call) > 1 && call[1] == "SET" {
			t.Errorf("adopting sent %q", call)
		}
	}
}
