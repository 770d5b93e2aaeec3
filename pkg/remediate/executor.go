package remediate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/events"
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
	OnEvent func(event events.Name, remedy string)
}

// ErrChanged means the live value is no longer the one the guardian set.
var ErrChanged = errors.New("changed outside the guardian")

// Changes returns every change the ledger holds.
func (e *Executor) Changes() []Change { return e.Ledger.All() }

// Held returns the ledger's changes in the form policy.Decide takes.
func (e *Executor) Held() map[string]policy.Held {
	out := map[string]policy.Held{}
	for _, c := range e.Ledger.All() {
		out[c.Setting] = policy.Held{Setting: c.Setting, Original: c.Original, Value: c.Value, Remedy: c.Remedy, Since: c.Time}
	}
	return out
}

// event reports one remedy event to OnEvent and returns the fields that log it.
// Every remedy log line goes through here, so metrics and logs cannot disagree.
func (e *Executor) event(d policy.Decision, name events.Name, extra ...zap.Field) []zap.Field {
	if e.OnEvent != nil {
		e.OnEvent(name, d.Remedy)
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
	case policy.ActWarn:
		e.Log.Warn(d.Detail, e.event(d, events.RemedyHeld)...)
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

func (e *Executor) configSet(ctx context.Context, setting, value string) error {
	if err := e.Client.Do(ctx, e.ConfigCommand, "SET", setting, value).Err(); err != nil {
		return fmt.Errorf("%s SET %s %s: %w", e.ConfigCommand, setting, value, err)
	}
	return nil
}

// set records the change in the ledger, then applies it; if applying fails the
// entry is removed again, so the ledger never claims a change that was not made.
func (e *Executor) set(ctx context.Context, d policy.Decision) error {
	orig, err := e.configGet(ctx, d.Setting)
	if err != nil {
		return err
	}
	if policy.SameValue(d.Setting, orig, d.Value) {
		return nil // already so: nothing to record or undo
	}
	c := Change{Instance: e.Instance, Addr: e.Addr, Setting: d.Setting, Original: orig, Value: d.Value,
		Remedy: d.Remedy, Reason: d.Reason, Time: e.Now()}
	if err := e.Ledger.Record(c); err != nil {
		return fmt.Errorf("record change before applying it: %w", err)
	}
	if !e.DryRun {
		if err := e.configSet(ctx, d.Setting, d.Value); err != nil {
			if rerr := e.Ledger.Remove(d.Setting); rerr != nil {
				err = fmt.Errorf("%w; and removing the ledger entry failed: %v", err, rerr)
			}
			return err
		}
	}
	msg := fmt.Sprintf("set %s %s (was %s): %s", d.Setting, d.Value, orig, d.Detail)
	if e.DryRun {
		msg = "dry-run: would " + msg
	}
	e.Log.Warn(msg, e.event(d, events.RemedyApplied, zap.String("old_value", orig), zap.String("new_value", d.Value), zap.String("result", "ok"))...)
	return nil
}

// undo restores a held setting, but only if the live value is still the guardian's;
// otherwise someone else changed it since, and the guardian yields to them.
func (e *Executor) undo(ctx context.Context, setting string, d policy.Decision) error {
	c, ok := e.Ledger.Get(setting)
	if !ok {
		return nil
	}
	if e.DryRun {
		if err := e.Ledger.Remove(setting); err != nil {
			return err
		}
		e.Log.Info(fmt.Sprintf("dry-run: would set %s back to %s: %s", setting, c.Original, d.Detail),
			e.event(d, events.RemedyUndone, zap.String("old_value", c.Value), zap.String("new_value", c.Original), zap.String("result", "ok"))...)
		return nil
	}
	live, err := e.configGet(ctx, setting)
	if err != nil {
		return err
	}
	if !policy.SameValue(setting, live, c.Value) {
		return e.yield(c, live, d)
	}
	if err := e.configSet(ctx, setting, c.Original); err != nil {
		return err
	}
	if err := e.Ledger.Remove(setting); err != nil {
		return fmt.Errorf("restored %s but could not update the ledger: %w", setting, err)
	}
	e.Log.Info(fmt.Sprintf("set %s back to %s: %s", setting, c.Original, d.Detail),
		e.event(d, events.RemedyUndone, zap.String("old_value", c.Value), zap.String("new_value", c.Original), zap.String("result", "ok"))...)
	return nil
}

func (e *Executor) yield(c Change, live string, d policy.Decision) error {
	if err := e.Ledger.Remove(c.Setting); err != nil {
		return fmt.Errorf("drop ledger entry of %s: %w", c.Setting, err)
	}
	msg := fmt.Sprintf("%s is %s, not the %s the guardian set: it was changed outside the guardian (operator, Redis restart or CONFIG REWRITE); leaving it alone", c.Setting, live, c.Value)
	if policy.SameValue(c.Setting, live, c.Original) {
		msg = fmt.Sprintf("%s is back at its original %s (the change was undone by someone else, or never applied); dropping the ledger entry", c.Setting, live)
	}
	d.Setting = c.Setting
	if d.Remedy == "" {
		d.Remedy = c.Remedy
	}
	e.Log.Warn(msg, e.event(d, events.RemedyYielded, zap.String("old_value", c.Value), zap.String("new_value", live), zap.String("result", "yielded"))...)
	return ErrChanged
}

// Reconcile compares every held change with the live configuration and yields
// where someone else changed the setting. It runs after each CONFIG refresh and at
// start-up, so a restart, a failover's CONFIG REWRITE or an operator is noticed. It
// returns the settings yielded to an operator (not those found back at their
// original, which were never applied or were undone).
func (e *Executor) Reconcile(cfg monitor.RedisConfig) []string {
	if e.DryRun || !cfg.Known() {
		return nil
	}
	var yielded []string
	for _, c := range e.Ledger.All() {
		live, ok := cfg[c.Setting]
		if !ok || policy.SameValue(c.Setting, live, c.Value) {
			continue
		}
		_ = e.yield(c, live, policy.Decision{Remedy: c.Remedy, Reason: c.Reason})
		if !policy.SameValue(c.Setting, live, c.Original) {
			yielded = append(yielded, c.Setting)
		}
	}
	return yielded
}

// RestoreAll undoes every held change, for `redis-guardian restore` and package
// removal. Changes that cannot be restored now stay in the ledger.
func (e *Executor) RestoreAll(ctx context.Context, why string) error {
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
	if why := policy.TempNotStale(tf, monitor.ParseInfo(raw), e.Now(), 0); why != "" {
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
