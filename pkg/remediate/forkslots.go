package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// ForkSlots is the host's fork budget as the executor uses it: a slot taken
// for this instance's fork child, or given back (internal/forkslot has the
// lock files; tests fake it).
type ForkSlots interface {
	// Take takes a slot (true when the instance holds one afterwards, false
	// when every slot is held by others).
	Take() (bool, error)
	// Release gives the instance's slot back.
	Release() error
	// Wait marks the instance as waiting for a slot since a time, for the
	// others' turn (policy: monitor.ForkView.Ahead); StopWaiting ends it.
	Wait(since time.Time) error
	StopWaiting()
}

// syncForkWait makes the instance's waiting mark follow the ledger: it waits
// for a slot exactly while fork_budget holds save off for want of one, since
// the hold began. From the ledger, not from each decision, so a hold that ends
// any way (given back, yielded to an operator, a restarted Redis) or that a
// restarted guardian finds, keeps its turn right.
func (e *Executor) syncForkWait() {
	if e.Slots == nil || e.DryRun {
		return
	}
	c, ok := e.Ledger.Get(policy.SettingSave)
	if !ok || c.Remedy != policy.RemedyForkBudget || c.Reason != policy.IDForkDeferred {
		e.Slots.StopWaiting()
		return
	}
	if err := e.Slots.Wait(c.Time); err != nil {
		// The turn is a courtesy: the save still waits for a free slot, and
		// max_deferral bounds it.
		e.Log.Debug("could not mark the save as waiting for a fork slot", zap.Error(err))
	}
}

var errNoSlots = errors.New("this instance has no fork slots configured")

// forkTake takes a slot. When none is free and the decision names a setting,
// the due save must wait: the setting is held at the decision's value through
// the ledger, in this same step (the save fires at Redis's next cron tick,
// before another tick could act). A child that runs while every slot is held
// (an operator's BGSAVE, a replica's sync) is logged once and counted as a
// failed fork_budget event; nothing is killed.
func (e *Executor) forkTake(ctx context.Context, d policy.Decision) error {
	if e.Slots == nil {
		return errNoSlots
	}
	if e.DryRun {
		// A dry run takes no slot: it must not make an enforcing guardian's
		// instances wait.
		e.Log.Debug("dry-run: would take a fork slot: " + d.Detail)
		return nil
	}
	ok, err := e.Slots.Take()
	if err != nil {
		return fmt.Errorf("take a fork slot: %w", err)
	}
	if ok {
		e.setOverBudget(false)
		e.Log.Debug("took a fork slot: "+d.Detail, zap.String("remedy", d.Remedy))
		return nil
	}
	if d.Setting != "" {
		hold := d
		hold.Action = policy.ActSet
		return e.set(ctx, hold)
	}
	if !e.setOverBudget(true) {
		e.Log.Warn("the host is over its fork budget: a fork child of this instance runs while every fork slot is held; nothing is killed: "+d.Detail,
			e.event(d, events.RemedyFailed, zap.String("result", "over_budget"))...)
	}
	return nil
}

// setOverBudget records whether a child runs without a slot and returns what it was.
func (e *Executor) setOverBudget(v bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	was := e.overBudget
	e.overBudget = v
	return was
}

// forkRelease gives the instance's slot back.
func (e *Executor) forkRelease(d policy.Decision) error {
	if e.Slots == nil || e.DryRun {
		return nil
	}
	if err := e.Slots.Release(); err != nil {
		return err
	}
	e.Log.Debug("released the fork slot: "+d.Detail, zap.String("remedy", d.Remedy))
	return nil
}

// forkResume takes a slot and, once it holds one, gives the deferred setting
// back, so Redis starts the due save holding the slot. With no slot free it
// does nothing: the save waits for the next tick.
func (e *Executor) forkResume(ctx context.Context, d policy.Decision) error {
	if e.Slots == nil {
		return errNoSlots
	}
	if !e.DryRun {
		ok, err := e.Slots.Take()
		if err != nil {
			return fmt.Errorf("take a fork slot: %w", err)
		}
		if !ok {
			return nil
		}
	}
	return e.undo(ctx, d.Setting, d)
}

// ownForkSlot takes a fork slot for the guardian's own BGSAVE or BGREWRITEAOF
// (OwnForksTakeSlots). The policy starts one only while a slot is free
// (policy.OtherForkRunning), but another guardian may have taken it since the
// snapshot: then the command is not sent (false), and the remedy's backoff
// brings it back. fork_budget gives the slot back at its next tick once no
// child runs (the command failed, or its child ended), as for Redis's
// automatic saves.
func (e *Executor) ownForkSlot(d policy.Decision, name string) (bool, error) {
	if !e.OwnForksTakeSlots || e.Slots == nil || e.DryRun {
		return true, nil
	}
	ok, err := e.Slots.Take()
	if err != nil {
		return false, fmt.Errorf("take a fork slot for %s: %w", name, err)
	}
	if !ok {
		e.Log.Info(name+" waits: every fork slot of the host is held by another instance: "+d.Detail,
			e.event(d, events.RemedyHeld, zap.String("result", "fork_slot_busy"))...)
	}
	return ok, nil
}
