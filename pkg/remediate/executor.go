package remediate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// Doer is the slice of a Redis client the executor needs.
type Doer interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
}

var _ Doer = (*redis.Client)(nil)

// Executor carries out decisions for one instance.
type Executor struct {
	Instance      string
	Addr          string
	Client        Doer
	ConfigCommand string
	Ledger        Ledger
	DryRun        bool
	Log           *zap.Logger
	ProcRoot      string
	Now           func() time.Time
	// OnEvent, when set, is told of every remedy event as it is logged (metrics).
	// limit is the limit of a remedy_suppressed event, "" for the others.
	OnEvent func(event events.Name, remedy, limit string)
	// Slots are the host's fork slots (fork_budget's actions); nil: none.
	Slots ForkSlots
	// OwnForksTakeSlots makes the guardian's own BGSAVE and BGREWRITEAOF take a
	// fork slot first (fork_budget is on): they count against the host's
	// budget like Redis's automatic saves.
	OwnForksTakeSlots bool

	// The identity of the Redis last read (Reconcile), recorded in every entry so
	// reconcile and undo act only on the Redis a change was made on.
	mu         sync.Mutex
	runID      string
	configFile string
	stranded   map[string]string // setting -> why its entry is not this Redis's
	// overBudget: a child of this instance runs without a slot (logged once).
	overBudget bool
	// keptYields are the yields last kept in the state dir (KeepYields).
	keptYields []policy.Yield
}

// recheckTimeout bounds the read that follows a SET or undo whose reply was lost:
// the tick's own deadline may be what expired.
const recheckTimeout = 2 * time.Second

// applyTimeout bounds the CONFIG SET that follows a ledger write. The write's
// fsync may have spent the tick's deadline on a disk that Redis's own saves keep
// busy; a change that is recorded must then still be made, or it would be rolled
// back with another slow write, and every tick would fail the same way.
const applyTimeout = 2 * time.Second

// ErrChanged means the live value is no longer the one the guardian set.
var ErrChanged = errors.New("changed outside the guardian")

// Changes returns every change the ledger holds.
func (e *Executor) Changes() []Change { return e.Ledger.All() }

// Held returns the ledger's changes on this Redis in the form policy.Decide takes;
// a stranded entry (another Redis's) is not held here.
func (e *Executor) Held() map[string]policy.Held {
	out := map[string]policy.Held{}
	stranded := e.Stranded()
	for _, c := range e.Ledger.All() {
		if _, ok := stranded[c.Setting]; ok {
			continue
		}
		out[c.Setting] = policy.Held{Setting: c.Setting, Original: c.Original, Value: c.Value, Remedy: c.Remedy, Reason: c.Reason, Since: c.Time}
	}
	return out
}

// Stranded returns the entries that belong to another Redis than the one at Addr
// (the instance's address changed), by setting, with why.
func (e *Executor) Stranded() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.stranded))
	for k, v := range e.stranded {
		out[k] = v
	}
	return out
}

func (e *Executor) identity() (runID, configFile string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runID, e.configFile
}

// ours reports whether a ledger entry was made on the Redis this executor talks to
// now, and if not, why.
func (e *Executor) ours(c Change) (bool, string) {
	if c.Addr != "" && c.Addr != e.Addr {
		return false, fmt.Sprintf("it was made on %s, and this instance now watches %s: restore it there (redis-guardian restore --addr %s) or check the setting by hand, then remove the entry", c.Addr, e.Addr, c.Addr)
	}
	return true, ""
}

// event reports one remedy event to OnEvent and returns the fields that log it.
// Every remedy log line goes through here, so metrics and logs cannot disagree.
func (e *Executor) event(d policy.Decision, name events.Name, extra ...zap.Field) []zap.Field {
	if e.OnEvent != nil {
		e.OnEvent(name, d.Remedy, d.Limit)
	}
	f := []zap.Field{events.Field(name), zap.String("remedy", d.Remedy), zap.String("reason", d.Reason)}
	if d.Setting != "" {
		f = append(f, zap.String("setting", d.Setting))
	}
	if d.Detail != "" {
		f = append(f, zap.String("cause", d.Detail))
	}
	if e.DryRun {
		f = append(f, zap.Bool("dry_run", true))
	}
	return append(f, extra...)
}

// Execute carries out one decision and reports the outcome. Failures are returned
// in the outcome, not as errors: the caller feeds them back to the policy's backoff.
func (e *Executor) Execute(ctx context.Context, d policy.Decision) policy.Outcome {
	if d.Remedy == policy.RemedyForkBudget {
		defer e.syncForkWait() // a hold of save began or ended: the turn follows
	}
	var err error
	switch d.Action {
	case policy.ActSet:
		err = e.set(ctx, d)
	case policy.ActUndo:
		err = e.undo(ctx, d.Setting, d)
	case policy.ActBgsave:
		err = e.bgsave(ctx, d)
	case policy.ActBgrewriteaof:
		err = e.command(ctx, d, "BGREWRITEAOF")
	case policy.ActDeleteTemp:
		err = e.deleteTemp(ctx, d)
	case policy.ActClientKill:
		err = e.clientKill(ctx, d)
	case policy.ActForkSlotTake:
		err = e.forkTake(ctx, d)
	case policy.ActForkSlotRelease:
		err = e.forkRelease(d)
	case policy.ActForkResume:
		err = e.forkResume(ctx, d)
	case policy.ActWarn:
		e.Log.Warn(d.Detail, e.event(d, events.RemedyHeld)...)
		return policy.Outcome{Decision: d, OK: true}
	case policy.ActSuppressed:
		e.Log.Warn(fmt.Sprintf("%s held back by its %s limit", d.Remedy, d.Limit),
			e.event(d, events.RemedySuppressed, zap.String("limit", d.Limit))...)
		return policy.Outcome{Decision: d, OK: true}
	default:
		err = fmt.Errorf("unknown action %q", d.Action)
	}
	if err != nil {
		if errors.Is(err, ErrChanged) {
			return policy.Outcome{Decision: d, OK: true}
		}
		e.Log.Error(strings.TrimSpace("remedy failed: "+string(d.Action)+" "+d.Setting), e.event(d, events.RemedyFailed, zap.String("result", "failed"), zap.Error(err))...)
		return policy.Outcome{Decision: d, Err: err.Error()}
	}
	return policy.Outcome{Decision: d, OK: true}
}

func (e *Executor) configGet(ctx context.Context, setting string) (string, error) {
	kv, err := e.Client.Do(ctx, e.ConfigCommand, "GET", setting).StringSlice()
	if err != nil {
		return "", fmt.Errorf("%s GET %s: %w", e.ConfigCommand, setting, err)
	}
	if len(kv) < 2 {
		return "", fmt.Errorf("%s GET %s: the server does not know this setting", e.ConfigCommand, setting)
	}
	return kv[1], nil
}

// liveRunID returns the run_id of the process that answers now (INFO server),
// "" when it cannot tell. One round trip per CONFIG SET, which is rare.
func (e *Executor) liveRunID(ctx context.Context) string {
	raw, err := e.Client.Do(ctx, "INFO", "server").Text()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(raw, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v
		}
	}
	return ""
}

func (e *Executor) configSet(ctx context.Context, setting, value string) error {
	if err := e.Client.Do(ctx, e.ConfigCommand, "SET", setting, value).Err(); err != nil {
		return fmt.Errorf("%s SET %s %s: %w", e.ConfigCommand, setting, value, err)
	}
	return nil
}

// set records the change in the ledger, then applies it. If applying fails, the
// live value is read again: a SET whose reply was lost may have been applied, and
// then the entry is its only record. The entry goes only when the live value is
// the original.
func (e *Executor) set(ctx context.Context, d policy.Decision) error {
	if why, ok := e.Stranded()[d.Setting]; ok {
		return fmt.Errorf("the ledger holds a change of %s that belongs to another Redis (%s); not overwriting the only record of it", d.Setting, why)
	}
	orig, err := e.configGet(ctx, d.Setting)
	if err != nil {
		return err
	}
	if policy.SameValue(d.Setting, orig, d.Value) {
		if c, ok := e.Ledger.Get(d.Setting); ok && c.Remedy != d.Remedy && policy.SameValue(d.Setting, c.Value, d.Value) {
			return e.adopt(c, d)
		}
		return nil // already so: nothing to record or undo
	}
	runID, configFile := e.identity()
	if live := e.liveRunID(ctx); live != "" && live != runID {
		// Redis restarted since the reading this decision came from: the change
		// lands on the new process, so its entry names that one. Under the old
		// run_id the next reconcile would drop it as the old process's, and the
		// value would stay with no record (the soak left `save ""` that way).
		e.mu.Lock()
		e.runID = live
		e.mu.Unlock()
		runID = live
	}
	c := Change{Instance: e.Instance, Addr: e.Addr, RunID: runID, ConfigFile: configFile, Setting: d.Setting, Original: orig, Value: d.Value,
		Remedy: d.Remedy, Reason: d.Reason, Time: e.Now(), FileValue: d.FileValue}
	if prev, ok := e.Ledger.Get(d.Setting); ok && prev.Remedy == d.Remedy && policy.SameValue(d.Setting, orig, prev.Value) {
		// A further step of the same hold (a limit raised again): the original to
		// restore is still the one from before the guardian's first step.
		c.Original, c.Time, c.FileValue, c.Applied = prev.Original, prev.Time, prev.FileValue, prev.Applied
	}
	sync, err := e.record(c, d.Urgent)
	if err != nil {
		return fmt.Errorf("record change before applying it: %w", err)
	}
	msg := fmt.Sprintf("set %s %s (was %s): %s", d.Setting, d.Value, orig, d.Detail)
	if e.DryRun {
		e.Log.Warn("dry-run: would "+msg, e.event(d, events.RemedyApplied, zap.String("old_value", orig), zap.String("new_value", d.Value), zap.String("result", "ok"))...)
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
	err = e.configSet(actx, d.Setting, d.Value)
	cancel()
	if serr := sync(); serr != nil {
		// The entry is in place for every reader and a restarted guardian; only a
		// host crash could still lose it. The next ledger write tries again.
		e.Log.Warn("could not fsync the ledger entry of a change: a host crash could lose it", zap.String("setting", d.Setting), zap.Error(serr))
	}
	if err != nil {
		live, rerr := e.recheck(d.Setting)
		switch {
		case rerr == nil && policy.SameValue(d.Setting, live, d.Value):
			msg += " (the reply was lost, but the value is live)"
		case rerr == nil && policy.SameValue(d.Setting, live, orig):
			if rmErr := e.Ledger.Remove(d.Setting); rmErr != nil {
				err = fmt.Errorf("%w; and removing the ledger entry failed: %v", err, rmErr)
			}
			return err
		default:
			// Unknown or changed: keep the entry, so nothing the guardian may have
			// changed is left without a record; reconciliation settles it.
			if rerr != nil {
				return fmt.Errorf("%w; the value could not be read back (%v), so the ledger keeps the entry", err, rerr)
			}
			return fmt.Errorf("%w; %s is now %s, so the ledger keeps the entry", err, d.Setting, live)
		}
	}
	c.Applied = true
	if err := e.Ledger.Record(c); err != nil {
		// The change is live and recorded; only the Applied mark is missing, which
		// the next reconciliation sets.
		e.Log.Warn("could not mark the change applied in the ledger", zap.String("setting", d.Setting), zap.Error(err))
	}
	e.Log.Warn(msg, e.event(d, events.RemedyApplied, zap.String("old_value", orig), zap.String("new_value", d.Value), zap.String("result", "ok"))...)
	return nil
}

// record puts a change in the ledger before it is applied. An urgent change
// (writes are rejected now) is applied as soon as its entry is renamed into place,
// and the returned sync makes it durable right after the CONFIG SET: on a disk
// busy with Redis's own writes, two fsyncs can take tens of milliseconds, and at
// 1000 writes/s each millisecond is a rejected write. Any other change is durable
// first.
func (e *Executor) record(c Change, urgent bool) (sync func() error, err error) {
	if urgent {
		return e.Ledger.Stage(c)
	}
	return noSync, e.Ledger.Record(c)
}

// adopt hands a held change over to another remedy that needs the same value for
// its own reason (a master demoted while stop_writes held the toggle: on a replica
// the hold is replica_guard's from now on). The original and the time stay: the
// ledger keeps the one record of what to restore.
func (e *Executor) adopt(c Change, d policy.Decision) error {
	prev := c.Remedy
	c.Remedy, c.Reason = d.Remedy, d.Reason
	if err := e.Ledger.Record(c); err != nil {
		return fmt.Errorf("hand %s over to %s: %w", c.Setting, d.Remedy, err)
	}
	e.Log.Info(fmt.Sprintf("%s %s is now held by %s (was %s): %s", c.Setting, c.Value, d.Remedy, prev, d.Detail),
		e.event(d, events.RemedyApplied, zap.String("old_value", c.Value), zap.String("new_value", c.Value), zap.String("result", "adopted"))...)
	return nil
}

// recheck reads a setting's live value after a failed or timed-out call, with its
// own deadline (the caller's may be what expired).
func (e *Executor) recheck(setting string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), recheckTimeout)
	defer cancel()
	return e.configGet(ctx, setting)
}

// undo restores a held setting, but only if the live value is still the guardian's;
// otherwise someone else changed it since, and the guardian yields to them. Only an
// entry of this Redis is undone. If the SET fails, the live value is read again and
// the entry is kept unless the original is back.
func (e *Executor) undo(ctx context.Context, setting string, d policy.Decision) error {
	c, ok := e.Ledger.Get(setting)
	if !ok {
		return nil
	}
	if ours, why := e.ours(c); !ours {
		return fmt.Errorf("not undoing %s: %s", setting, why)
	}
	if e.DryRun {
		if err := e.Ledger.Remove(setting); err != nil {
			return err
		}
		e.Log.Info(fmt.Sprintf("dry-run: would set %s back to %s: %s", setting, c.Original, d.Detail),
			e.event(d, events.RemedyUndone, zap.String("old_value", c.Value), zap.String("new_value", c.Original), zap.String("result", "ok"))...)
		return nil
	}
	if runID, _ := e.identity(); c.RunID != "" && runID != "" && runID != c.RunID {
		if err := e.restarted(c, d); err != nil {
			return err
		}
		c, _ = e.Ledger.Get(setting) // the hold followed the new process
	}
	live, err := e.configGet(ctx, setting)
	if err != nil {
		return err
	}
	if !policy.SameValue(setting, live, c.Value) {
		return e.yield(c, live, d)
	}
	if err := e.configSet(ctx, setting, c.Original); err != nil {
		live, rerr := e.recheck(setting)
		if rerr != nil || !policy.SameValue(setting, live, c.Original) {
			return err // the entry stays: the guardian's value may still be live
		}
	}
	// The file is put right before the entry goes: a guardian killed in between
	// finds the entry at its next start, with the original live, and its yield
	// repairs the file then. Removed first, the file would keep the held value
	// with no record of it, and the next hold would take it for the operator's.
	e.repairConfigFile(ctx, c, d)
	if err := e.Ledger.Remove(setting); err != nil {
		return fmt.Errorf("restored %s but could not update the ledger: %w", setting, err)
	}
	e.Log.Info(fmt.Sprintf("set %s back to %s: %s", setting, c.Original, d.Detail),
		e.event(d, events.RemedyUndone, zap.String("old_value", c.Value), zap.String("new_value", c.Original), zap.String("result", "ok"))...)
	return nil
}

// heldInFile returns the line of Redis's config file that says the guardian's
// held value when the file said something else as the change was made: a CONFIG
// REWRITE during the hold wrote it there, and a restart would run with it for
// good. A file that said the value before the hold is someone's choice.
func (e *Executor) heldInFile(c Change) (text string, line monitor.ConfigFileLine, ok bool) {
	if c.ConfigFile == "" || policy.SameValue(c.Setting, c.FileValue, c.Value) {
		return "", line, false
	}
	text, _, err := monitor.ReadConfigText(c.ConfigFile)
	if err != nil {
		return "", line, false // not on this host, or not readable: nothing to compare
	}
	line, ok = monitor.ParseConfigFile(text, []string{c.Setting})[c.Setting]
	if !ok || !policy.SameValue(c.Setting, line.Value, c.Value) {
		return "", line, false
	}
	return text, line, true
}

// repairConfigFile puts Redis's config file right when an entry ends (an undo, a
// yield to the operator) and a CONFIG REWRITE wrote the held value into it during
// the hold: CONFIG REWRITE again, now that the runtime value is no longer the
// guardian's, and log the lines that changed.
func (e *Executor) repairConfigFile(ctx context.Context, c Change, d policy.Decision) {
	before, line, ok := e.heldInFile(c)
	if !ok {
		return
	}
	fields := []zap.Field{zap.String("config_file", c.ConfigFile), zap.Int("line", line.Number)}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
	err := e.Client.Do(rctx, e.ConfigCommand, "REWRITE").Err()
	cancel()
	if err != nil {
		e.Log.Error(fmt.Sprintf("%s line %d still says %q, written by a CONFIG REWRITE during the hold, and CONFIG REWRITE failed: set `%s %s` there by hand before Redis restarts",
			c.ConfigFile, line.Number, line.Text, c.Setting, c.Original),
			e.event(d, events.RemedyFailed, append(fields, zap.String("result", "config_rewrite_failed"), zap.Error(err))...)...)
		return
	}
	after, _, err := monitor.ReadConfigText(c.ConfigFile)
	if err != nil {
		after = ""
	}
	removed, added := lineDiff(before, after)
	e.Log.Warn(fmt.Sprintf("%s said %q, written by a CONFIG REWRITE during the hold: ran CONFIG REWRITE to put the file right (%d lines removed, %d added)",
		c.ConfigFile, line.Text, len(removed), len(added)),
		e.event(d, events.RemedyApplied, append(fields, zap.String("result", "config_rewrite"),
			zap.Strings("removed_lines", capLines(directives(removed))), zap.Strings("added_lines", capLines(directives(added))))...)...)
}

// directives keeps the lines that set something: the log says what CONFIG
// REWRITE changed, not the comments it moved, and never a line of some other
// file the path may name by the time it is read again (the redis uid can swap it).
func directives(ls []string) []string {
	var out []string
	for _, l := range ls {
		// A directive is a lower-case name and its arguments, as CONFIG REWRITE
		// writes it.
		name, args, _ := strings.Cut(strings.TrimSpace(l), " ")
		if name != "" && args != "" && name[0] != '-' && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == "" {
			out = append(out, l)
		}
	}
	return out
}

// lineDiff returns the lines of a that b lacks and the lines of b that a lacks,
// counting repeats: enough to say what a CONFIG REWRITE changed.
func lineDiff(a, b string) (removed, added []string) {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		if count[l] > 0 {
			count[l]--
			continue
		}
		added = append(added, l)
	}
	for _, l := range strings.Split(a, "\n") {
		if count[l] > 0 {
			count[l]--
			removed = append(removed, l)
		}
	}
	return removed, added
}

// capLines keeps a log field short: CONFIG REWRITE may append a block of lines.
func capLines(ls []string) []string {
	const most = 20
	if len(ls) > most {
		return append(ls[:most:most], fmt.Sprintf("... and %d more", len(ls)-most))
	}
	return ls
}

// restarted drops an entry of a Redis that has restarted since (its run_id
// changed): the runtime value the guardian set died with that process, and the
// value now live is what the config file says, which the guardian does not own.
//
// Unless the new process read the guardian's value from the file, written there
// by a CONFIG REWRITE during the hold: that value is still the guardian's doing,
// so the entry follows the new process (its run_id), and the hold ends, file
// and all, like any other. Dropped, it would leave Redis with the held value for
// good and no record of it (the soak found redis.conf and Redis so).
func (e *Executor) restarted(c Change, d policy.Decision) error {
	d.Setting = c.Setting
	if d.Remedy == "" {
		d.Remedy = c.Remedy
	}
	if _, line, ok := e.heldInFile(c); ok {
		runID, _ := e.identity()
		prev := c.RunID
		c.RunID, c.Applied = runID, false
		if err := e.Ledger.Record(c); err != nil {
			return fmt.Errorf("move the ledger entry of %s to the restarted Redis: %w", c.Setting, err)
		}
		e.Log.Warn(fmt.Sprintf("Redis restarted during the hold and read %s %s from %s line %d, written by a CONFIG REWRITE during the hold: the hold follows the new process, and ends with the file put right",
			c.Setting, c.Value, c.ConfigFile, line.Number),
			e.event(d, events.RemedyApplied, zap.String("old_value", c.Value), zap.String("new_value", c.Value), zap.String("result", "followed_restart"),
				zap.String("old_run_id", prev), zap.String("config_file", c.ConfigFile), zap.Int("line", line.Number))...)
		return nil
	}
	if err := e.Ledger.Remove(c.Setting); err != nil {
		return fmt.Errorf("drop ledger entry of %s: %w", c.Setting, err)
	}
	e.Log.Warn(fmt.Sprintf("Redis restarted since the guardian set %s %s: that value went with the old process and %s now comes from its config file; dropping the ledger entry", c.Setting, c.Value, c.Setting),
		e.event(d, events.RemedyYielded, zap.String("old_value", c.Value), zap.String("result", "redis_restarted"))...)
	return ErrChanged
}

func (e *Executor) yield(c Change, live string, d policy.Decision) error {
	d.Setting = c.Setting
	if d.Remedy == "" {
		d.Remedy = c.Remedy
	}
	// The live value is someone else's now; a held value a CONFIG REWRITE wrote
	// into the file is still the guardian's, and a restart would bring it back
	// with nothing left to give it back. Rewriting the file writes their value.
	e.repairConfigFile(context.Background(), c, d)
	if err := e.Ledger.Remove(c.Setting); err != nil {
		return fmt.Errorf("drop ledger entry of %s: %w", c.Setting, err)
	}
	msg := fmt.Sprintf("%s is %s, not the %s the guardian set: it was changed outside the guardian (operator, CONFIG SET by a tool); leaving it alone for this episode", c.Setting, live, c.Value)
	if policy.SameValue(c.Setting, live, c.Original) {
		if c.Applied {
			msg = fmt.Sprintf("%s is back at its original %s although the guardian's %s took effect: someone set it back; leaving it alone for this episode", c.Setting, live, c.Value)
		} else {
			msg = fmt.Sprintf("%s is at its original %s (the guardian's change never took effect); dropping the ledger entry", c.Setting, live)
		}
	}
	e.Log.Warn(msg, e.event(d, events.RemedyYielded, zap.String("old_value", c.Value), zap.String("new_value", live), zap.String("result", "yielded"))...)
	return ErrChanged
}

// Reconcile learns which Redis answers (its run_id and config file, recorded in
// new entries) and compares every held change with the live configuration when
// fresh (the CONFIG GET of this tick; at start-up, after a refresh or a restart).
// It yields where someone else changed a setting, drops the entries of a Redis that
// restarted, marks as stranded the entries of another Redis, and returns the
// settings yielded to an operator: those changed to another value, and those set
// back to their original after the guardian's value was seen live.
func (e *Executor) Reconcile(r monitor.RedisReading, fresh bool) []policy.Yield {
	if r.Err != nil {
		return nil
	}
	e.mu.Lock()
	if r.Info.RunID != "" {
		e.runID = r.Info.RunID
	}
	e.configFile = r.Info.ConfigFile
	runID := e.runID
	e.mu.Unlock()
	if e.DryRun {
		return nil
	}
	stranded := map[string]string{}
	var yielded []policy.Yield
	for _, c := range e.Ledger.All() {
		if ours, why := e.ours(c); !ours {
			if _, known := e.Stranded()[c.Setting]; !known {
				e.Log.Error(fmt.Sprintf("the ledger holds %s %s, but %s", c.Setting, c.Value, why),
					e.event(policy.Decision{Remedy: c.Remedy, Reason: c.Reason, Setting: c.Setting}, events.RemedyFailed, zap.String("result", "stranded"), zap.String("old_addr", c.Addr))...)
			}
			stranded[c.Setting] = why
			continue
		}
		if c.RunID != "" && runID != "" && c.RunID != runID {
			if err := e.restarted(c, policy.Decision{Remedy: c.Remedy, Reason: c.Reason}); err != nil {
				continue // dropped with the old process
			}
			// It followed the new process: compare it with that one's live value
			// now (a restart makes this tick's CONFIG GET fresh), so a value the
			// new process does not have is yielded at once, not held on paper.
			var found bool
			if c, found = e.Ledger.Get(c.Setting); !found {
				continue
			}
		}
		if !fresh || !r.Config.Known() {
			continue
		}
		live, ok := r.Config[c.Setting]
		if !ok {
			continue
		}
		switch {
		case policy.SameValue(c.Setting, live, c.Value):
			if !c.Applied || c.RunID == "" {
				c.Applied = true // seen live: a revert from now on is someone's choice
				c.RunID = runID
				if err := e.Ledger.Record(c); err != nil {
					e.Log.Warn("could not mark the change applied in the ledger", zap.String("setting", c.Setting), zap.Error(err))
				}
			}
		case policy.SameValue(c.Setting, live, c.Original) && !c.Applied:
			_ = e.yield(c, live, policy.Decision{Remedy: c.Remedy, Reason: c.Reason})
		default:
			_ = e.yield(c, live, policy.Decision{Remedy: c.Remedy, Reason: c.Reason})
			yielded = append(yielded, policy.Yield{Remedy: c.Remedy, Setting: c.Setting})
		}
	}
	e.mu.Lock()
	e.stranded = stranded
	e.mu.Unlock()
	e.syncForkWait()
	return yielded
}

// RestoreAll undoes every held change of this Redis, for `redis-guardian restore`
// and package removal. Changes that cannot be restored now, and those of another
// Redis, stay in the ledger.
func (e *Executor) RestoreAll(ctx context.Context, why string) error {
	if raw, err := e.Client.Do(ctx, "INFO", "server").Text(); err == nil {
		e.Reconcile(monitor.RedisReading{Info: monitor.ParseInfo(raw)}, false)
	}
	var errs []error
	for _, c := range e.Ledger.All() {
		d := policy.Decision{Remedy: c.Remedy, Action: policy.ActUndo, Setting: c.Setting, Reason: c.Reason, Detail: why}
		if err := e.undo(ctx, c.Setting, d); err != nil && !errors.Is(err, ErrChanged) {
			errs = append(errs, fmt.Errorf("restore %s on %s: %w", c.Setting, e.Instance, err))
		}
	}
	return errors.Join(errs...)
}

func (e *Executor) bgsave(ctx context.Context, d policy.Decision) error {
	if d.Schedule {
		return e.command(ctx, d, "BGSAVE", "SCHEDULE")
	}
	return e.command(ctx, d, "BGSAVE")
}

// command runs a background command (BGSAVE, BGREWRITEAOF). One already running is
// what was wanted, not a failure.
func (e *Executor) command(ctx context.Context, d policy.Decision, name string, args ...any) error {
	if e.DryRun {
		e.Log.Info("dry-run: would run "+name+": "+d.Detail, e.event(d, events.RemedyApplied, zap.String("result", "ok"))...)
		return nil
	}
	if ok, err := e.ownForkSlot(d, name); err != nil || !ok {
		return err
	}
	res, err := e.Client.Do(ctx, append([]any{name}, args...)...).Text()
	switch {
	case err == nil:
		e.Log.Info(name+" started: "+d.Detail, e.event(d, events.RemedyApplied, zap.String("result", res))...)
		return nil
	case strings.Contains(err.Error(), "already in progress"):
		return nil
	case name == "BGSAVE" && err.Error() == "ERR":
		// Redis answers BGSAVE with a bare ERR when its fork fails: the cause
		// persists. That is this retry's expected outcome, not a failure of the
		// remedy; the policy's backoff schedules the next one.
		e.Log.Warn("BGSAVE retry could not fork yet; the cause persists: "+d.Detail,
			e.event(d, events.RemedyApplied, zap.String("result", "fork_failed"))...)
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// deleteTemp removes one of Redis's own temp files after checking, again and right
// before the unlink, every rule that made it stale: the scan's identification
// (monitor.StatTempFile: a Redis temp name, a regular file, its pid's liveness) and
// the policy's rules on live INFO (policy.TempNotStale: no fork child, not loading,
// no rewrite pending, the pid dead).
func (e *Executor) deleteTemp(ctx context.Context, d policy.Decision) error {
	tf, err := monitor.StatTempFile(d.Path, e.procRoot())
	if errors.Is(err, fs.ErrNotExist) {
		return nil // Redis removed it itself
	}
	if err != nil {
		return fmt.Errorf("refusing to delete: %w", err)
	}
	raw, err := e.Client.Do(ctx, "INFO", "persistence").Text()
	if err != nil {
		return fmt.Errorf("INFO before deleting %s: %w", d.Path, err)
	}
	if why := policy.TempNotStale(tf, monitor.ParseInfo(raw), e.Now(), d.MinAge); why != "" {
		return fmt.Errorf("not deleting %s: %s", d.Path, why)
	}
	if e.DryRun {
		e.Log.Info(fmt.Sprintf("dry-run: would delete stale %s temp file %s (%s)", tf.Kind, d.Path, policy.HumanBytes(tf.Size)),
			e.event(d, events.RemedyApplied, zap.String("path", d.Path), zap.Int64("bytes", tf.Size))...)
		return nil
	}
	if err := os.Remove(d.Path); err != nil {
		return fmt.Errorf("delete %s: %w", d.Path, err)
	}
	e.Log.Warn(fmt.Sprintf("deleted stale %s temp file %s, freed %s: %s", tf.Kind, d.Path, policy.HumanBytes(tf.Size), d.Detail),
		e.event(d, events.RemedyApplied, zap.String("path", d.Path), zap.Int64("bytes_freed", tf.Size), zap.String("result", "ok"))...)
	return nil
}

func (e *Executor) procRoot() string {
	if e.ProcRoot == "" {
		return "/proc"
	}
	return e.ProcRoot
}

// clientKill disconnects one client (client_guard) after checking every rule
// again on the live CLIENT LIST entry of its id: still the client the decision
// saw (address and command: ids are not reused while Redis runs, but count from
// 1 again after a restart), still not a replica, the master link or no-evict,
// and its output buffer still at least the decision's size (a client that has
// started to read is left alone). The guardian's own connections never match:
// their command is CLIENT LIST or INFO, their buffers empty, and CLIENT KILL's
// SKIPME default spares the caller. A client gone meanwhile is what was wanted.
func (e *Executor) clientKill(ctx context.Context, d policy.Decision) error {
	want := d.Client
	live, found, err := e.clientByID(ctx, want.ID)
	if err != nil {
		return err
	}
	fields := func(c monitor.Client) []zap.Field {
		return []zap.Field{zap.Int64("client_id", c.ID), zap.String("client_addr", c.Addr), zap.String("client_name", c.Name),
			zap.String("client_cmd", c.Cmd), zap.String("client_flags", c.Flags), zap.Int64("omem_bytes", c.Omem),
			zap.Float64("age_seconds", c.Age.Seconds())}
	}
	switch {
	case !found:
		e.Log.Info(fmt.Sprintf("client id=%d is gone: nothing to kill", want.ID), fields(want)...)
		return ErrChanged
	case live.Addr != want.Addr || live.Cmd != want.Cmd:
		e.Log.Info(fmt.Sprintf("client id=%d is now addr=%s cmd=%s, not the addr=%s cmd=%s seen: not killing it", want.ID, live.Addr, live.Cmd, want.Addr, want.Cmd), fields(live)...)
		return ErrChanged
	case policy.ClientKillable(live) != "":
		return fmt.Errorf("not killing client id=%d: %s", live.ID, policy.ClientKillable(live))
	case d.MinOmem <= 0 || live.Omem < d.MinOmem:
		e.Log.Info(fmt.Sprintf("client id=%d holds %s of output buffer now, under %s: not killing it", live.ID, policy.HumanBytes(live.Omem), policy.HumanBytes(d.MinOmem)), fields(live)...)
		return ErrChanged
	}
	msg := fmt.Sprintf("id=%d addr=%s cmd=%s with %s of output buffer", live.ID, live.Addr, live.Cmd, policy.HumanBytes(live.Omem))
	if e.DryRun {
		e.Log.Warn("dry-run: would kill client "+msg+": "+d.Detail, e.event(d, events.RemedyApplied, append(fields(live), zap.String("result", "ok"))...)...)
		return nil
	}
	n, err := e.Client.Do(ctx, "CLIENT", "KILL", "ID", live.ID).Int64()
	if err != nil {
		return fmt.Errorf("CLIENT KILL ID %d: %w", live.ID, err)
	}
	if n == 0 {
		e.Log.Info(fmt.Sprintf("client id=%d went before CLIENT KILL", live.ID), fields(live)...)
		return ErrChanged
	}
	e.Log.Warn("killed client "+msg+": "+d.Detail, e.event(d, events.RemedyApplied, append(fields(live), zap.String("result", "killed"))...)...)
	return nil
}

// clientByID reads one client's live CLIENT LIST entry: CLIENT LIST ID (6.2+),
// else the whole list.
func (e *Executor) clientByID(ctx context.Context, id int64) (monitor.Client, bool, error) {
	raw, err := e.Client.Do(ctx, "CLIENT", "LIST", "ID", id).Text()
	if err != nil && !isRedisError(err) {
		return monitor.Client{}, false, fmt.Errorf("CLIENT LIST ID %d: %w", id, err)
	}
	if err != nil {
		// Before 6.2 CLIENT LIST takes no ID: read the whole list.
		if raw, err = e.Client.Do(ctx, "CLIENT", "LIST").Text(); err != nil {
			return monitor.Client{}, false, fmt.Errorf("CLIENT LIST: %w", err)
		}
	}
	for _, c := range monitor.ParseClientList(raw) {
		if c.ID == id {
			return c, true, nil
		}
	}
	return monitor.Client{}, false, nil
}

// isRedisError reports whether err is Redis's answer (ERR syntax ...), not a
// failure to ask.
func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
