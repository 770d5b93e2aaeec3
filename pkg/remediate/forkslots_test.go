package remediate

import (
	"context"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// fakeSlots is a host with one fork slot, held by someone else while busy.
type fakeSlots struct {
	busy, mine bool
	takes      int
	waiting    time.Time
}

var _ ForkSlots = (*fakeSlots)(nil)

func (f *fakeSlots) Take() (bool, error) {
	f.takes++
	if f.mine {
		return true, nil
	}
	if f.busy {
		return false, nil
	}
	f.mine = true
	return true, nil
}

func (f *fakeSlots) Release() error { f.mine = false; return nil }

func (f *fakeSlots) Wait(since time.Time) error { f.waiting = since; return nil }

func (f *fakeSlots) StopWaiting() { f.waiting = time.Time{} }

var takeOrHold = policy.Decision{Remedy: policy.RemedyForkBudget, Action: policy.ActForkSlotTake, Setting: policy.SettingSave, Value: "",
	Reason: policy.IDForkDeferred, Detail: "a save is due"}

// TestForkTakeOrHold: a free slot is taken and save left alone; a busy one
// holds save "" through the ledger (recorded with the original) in the same step.
func TestForkTakeOrHold(t *testing.T) {
	t.Parallel()
	for _, busy := range []bool{false, true} {
		l := openLedger(t, t.TempDir())
		srv := newConfigServer(map[string]string{policy.SettingSave: "900 1"})
		e, _ := newExecutor(t, srv, l)
		slots := &fakeSlots{busy: busy}
		e.Slots = slots
		if out := e.Execute(context.Background(), takeOrHold); !out.OK {
			t.Fatalf("busy=%v: outcome %+v", busy, out)
		}
		c, held := l.Get(policy.SettingSave)
		switch {
		case !busy && (held || !slots.mine || srv.config[policy.SettingSave] != "900 1"):
			t.Errorf("free slot: held %v (%+v), mine %v, save %q; want the slot taken and save untouched", held, c, slots.mine, srv.config[policy.SettingSave])
		case busy && (!held || c.Original != "900 1" || srv.config[policy.SettingSave] != ""):
			t.Errorf("busy slot: held %v (%+v), save %q; want save \"\" held with its original", held, c, srv.config[policy.SettingSave])
		}
	}
}

// TestForkResume: the slot is taken first, then save given back; with no slot
// free nothing changes.
func TestForkResume(t *testing.T) {
	t.Parallel()
	l := openLedger(t, t.TempDir())
	held := change(policy.SettingSave, "900 1", "")
	held.Remedy = policy.RemedyForkBudget
	if err := l.Record(held); err != nil {
		t.Fatal(err)
	}
	srv := newConfigServer(map[string]string{policy.SettingSave: ""})
	e, _ := newExecutor(t, srv, l)
	slots := &fakeSlots{busy: true}
	e.Slots = slots
	resume := policy.Decision{Remedy: policy.RemedyForkBudget, Action: policy.ActForkResume, Setting: policy.SettingSave, Value: "900 1", Reason: policy.IDForkDeferred}
	if out := e.Execute(context.Background(), resume); !out.OK {
		t.Fatalf("outcome %+v", out)
	}
	if _, ok := l.Get(policy.SettingSave); !ok || srv.config[policy.SettingSave] != "" {
		t.Fatalf("no slot free: save %q, want it still held", srv.config[policy.SettingSave])
	}
	slots.busy = false
	if out := e.Execute(context.Background(), resume); !out.OK {
		t.Fatalf("outcome %+v", out)
	}
	if _, ok := l.Get(policy.SettingSave); ok || srv.config[policy.SettingSave] != "900 1" || !slots.mine {
		t.Fatalf("slot free: save %q, mine %v; want save given back with the slot held", srv.config[policy.SettingSave], slots.mine)
	}
}

// TestForkWaitFollowsTheHold: a save held for want of a slot marks the
// instance as waiting since the hold began (its turn); the mark goes when the
// hold ends, by the resume or any other way (here an operator's change the
// reconcile yields to), and a hold a restarted guardian finds marks it again.
func TestForkWaitFollowsTheHold(t *testing.T) {
	t.Parallel()
	l := openLedger(t, t.TempDir())
	srv := newConfigServer(map[string]string{policy.SettingSave: "900 1"})
	e, _ := newExecutor(t, srv, l)
	slots := &fakeSlots{busy: true}
	e.Slots = slots
	if out := e.Execute(context.Background(), takeOrHold); !out.OK {
		t.Fatalf("outcome %+v", out)
	}
	c, ok := l.Get(policy.SettingSave)
	if !ok || !slots.waiting.Equal(c.Time) {
		t.Fatalf("held %v (%+v); waiting since %v, want since the hold", ok, c, slots.waiting)
	}
	resume := policy.Decision{Remedy: policy.RemedyForkBudget, Action: policy.ActForkResume, Setting: policy.SettingSave, Value: "900 1", Reason: policy.IDForkDeferred}
	slots.busy = false
	if out := e.Execute(context.Background(), resume); !out.OK {
		t.Fatalf("outcome %+v", out)
	}
	if !slots.waiting.IsZero() {
		t.Fatalf("still waiting (since %v) after the save was given back with the slot", slots.waiting)
	}

	// A guardian that starts with the hold in its ledger waits again, in its
	// old turn; an operator's save during the hold ends it.
	_ = slots.Release()
	slots.busy = true
	if out := e.Execute(context.Background(), takeOrHold); !out.OK {
		t.Fatalf("outcome %+v", out)
	}
	c, _ = l.Get(policy.SettingSave)
	slots.StopWaiting()
	e2, _ := newExecutor(t, srv, l)
	e2.Slots = slots
	e2.Reconcile(monitor.RedisReading{Config: monitor.RedisConfig{policy.SettingSave: ""}}, true)
	if !slots.waiting.Equal(c.Time) {
		t.Fatalf("a restarted guardian waits since %v, want the hold's %v", slots.waiting, c.Time)
	}
	e2.Reconcile(monitor.RedisReading{Config: monitor.RedisConfig{policy.SettingSave: "3600 1"}}, true)
	if _, ok := l.Get(policy.SettingSave); ok || !slots.waiting.IsZero() {
		t.Fatalf("after the operator's save: held %v, waiting since %v; want neither", ok, slots.waiting)
	}
}

// TestForkOverBudget: a child without a slot is logged and counted once per
// episode; nothing else happens.
func TestForkOverBudget(t *testing.T) {
	t.Parallel()
	srv := newConfigServer(map[string]string{})
	e, logs := newExecutor(t, srv, openLedger(t, t.TempDir()))
	e.Slots = &fakeSlots{busy: true}
	take := policy.Decision{Remedy: policy.RemedyForkBudget, Action: policy.ActForkSlotTake, Reason: policy.IDForkDeferred, Detail: "a fork child runs"}
	for range 3 {
		if out := e.Execute(context.Background(), take); !out.OK {
			t.Fatalf("outcome %+v", out)
		}
	}
	if n := countEvents(logs, events.RemedyFailed); n != 1 {
		t.Errorf("%d over-budget events, want 1", n)
	}
	if len(srv.Calls()) != 0 {
		t.Errorf("Redis got %v, want nothing", srv.Calls())
	}
}

// TestOwnForkTakesSlot: the guardian's own BGSAVE and BGREWRITEAOF take a fork
// slot first when fork_budget is on; with every slot held by another instance
// the command is not sent (its remedy's backoff brings it back); with
// fork_budget off, or in a dry run, no slot is taken.
func TestOwnForkTakesSlot(t *testing.T) {
	t.Parallel()
	bgsave := policy.Decision{Remedy: policy.RemedyBgsaveRetry, Action: policy.ActBgsave, Reason: policy.IDMisconfRDB, Detail: "the cause cleared"}
	rewrite := policy.Decision{Remedy: policy.RemedyRewriteRetry, Action: policy.ActBgrewriteaof, Reason: policy.IDAOFRewriteFailed, Detail: "retry"}
	for _, tc := range []struct {
		name               string
		on, busy, dry      bool
		d                  policy.Decision
		wantSent, wantMine bool
	}{
		{name: "bgsave, slot free", on: true, d: bgsave, wantSent: true, wantMine: true},
		{name: "rewrite, slot free", on: true, d: rewrite, wantSent: true, wantMine: true},
		{name: "bgsave, slot busy", on: true, busy: true, d: bgsave},
		{name: "rewrite, slot busy", on: true, busy: true, d: rewrite},
		{name: "fork_budget off", busy: true, d: bgsave, wantSent: true},
		{name: "dry run", on: true, dry: true, d: bgsave},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &fakeRedis{}
			srv.reply = func(args []string) (any, error) { return "Background saving started", nil }
			e, logs := newExecutor(t, srv, openLedger(t, t.TempDir()))
			slots := &fakeSlots{busy: tc.busy}
			e.Slots, e.OwnForksTakeSlots, e.DryRun = slots, tc.on, tc.dry
			if out := e.Execute(context.Background(), tc.d); !out.OK {
				t.Fatalf("outcome %+v", out)
			}
			if sent := len(srv.Calls()) == 1; sent != tc.wantSent || slots.mine != tc.wantMine {
				t.Errorf("calls %v, slot mine %v; want sent %v, mine %v", srv.Calls(), slots.mine, tc.wantSent, tc.wantMine)
			}
			if tc.busy && tc.on && countEvents(logs, events.RemedyHeld) != 1 {
				t.Errorf("a command kept waiting for a slot logged %d remedy_held events, want 1", countEvents(logs, events.RemedyHeld))
			}
		})
	}
}
