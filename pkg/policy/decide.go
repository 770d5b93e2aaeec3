package policy

import (
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Action is what a decision asks pkg/remediate to do.
type Action string

// Actions.
const (
	ActSet          Action = "set"          // CONFIG SET through the ledger
	ActUndo         Action = "undo"         // restore a ledger entry's original
	ActBgsave       Action = "bgsave"       // BGSAVE (SCHEDULE when Schedule is set)
	ActBgrewriteaof Action = "bgrewriteaof" // BGREWRITEAOF
	ActDeleteTemp   Action = "delete_temp"  // remove one stale Redis temp file
	ActClientKill   Action = "client_kill"  // CLIENT KILL ID of Client, after checking it again
	ActWarn         Action = "warn"         // report only (e.g. a toggle still held)
	ActSuppressed   Action = "suppressed"   // report only: a limit stopped the remedy (Limit says which)
)

// Decision is one thing to do.
type Decision struct {
	Remedy  string
	Action  Action
	Setting string
	Value   string
	// Reason is the finding id that motivates the decision; Detail is readable text.
	Reason string
	Detail string
	// Schedule asks for BGSAVE SCHEDULE, because another child runs.
	Schedule bool
	Path     string
	// MinAge is the age a temp file must have for delete_temp (the executor checks
	// every rule again, with the age the decision was made with).
	MinAge time.Duration
	// Limit names the limit that suppressed the decision (ActSuppressed).
	Limit string
	// Client is the client to disconnect (ActClientKill) as CLIENT LIST showed it,
	// and MinOmem the output buffer it must still hold: the executor kills only
	// the same client (id, address, command), still killable, still that big.
	Client  monitor.Client
	MinOmem int64
	// FileValue is what the config file says for Setting when a set is decided
	// ("" unknown), recorded with the change to tell a CONFIG REWRITE later.
	FileValue string
	// Urgent says the set stops damage that goes on until it is applied, so it
	// must not wait for the disk: the executor applies it once its ledger entry is
	// renamed into place (every reader finds it) and fsyncs the entry right after
	// the CONFIG SET, and Decide orders urgent decisions first in their tick, so
	// no other remedy's durable write (an fsync on a disk Redis's own writes keep
	// busy takes tens to hundreds of milliseconds) comes before them. Two are:
	//   - stop_writes' lift after a failed save: Redis rejects every write until
	//     it is applied (at 1000 writes/s, each millisecond is a rejected write);
	//   - rewrite_retry's hold of auto-aof-rewrite-percentage 0 in a rewrite storm:
	//     every cron tick (100 ms at hz 10) starts another rewrite that fails at
	//     fork and adds an INCR file until it is applied.
	// A predicted change (stop_writes before a save that will fail, the hold while
	// a rewrite would not fit) prevents damage not yet done: it is durable first.
	Urgent bool
}

// Held is a change the ledger says the guardian has made and not undone.
type Held struct {
	Setting  string
	Original string
	Value    string
	Remedy   string
	// Reason is the finding id the change was made for.
	Reason string
	Since  time.Time
}

// Outcome reports how a decision went, so Decide can rate-limit and back off.
type Outcome struct {
	Decision Decision
	OK       bool
	// Err is the failure text (ACL denied, renamed command, ...), empty on success.
	Err string
}

// State is what Decide remembers between ticks. It is plain data; the daemon keeps
// one per instance and passes it in and out. Each remedy's own state is written
// only by that remedy; Shared only by Decide and Observe.
type State struct {
	Shared Shared
	// remedies holds each remedy's own state, by name, as its Decide returned it.
	remedies map[string]any
	// oomKills are the OOM kills seen in Redis's memory cgroup lately.
	oomKills OOMKills
}

// Sample is one reading of total_commands_processed.
type Sample struct {
	T    time.Time
	Cmds int64
}

// Input is everything Decide needs.
type Input struct {
	Snapshot monitor.Snapshot
	// Prev is the previous snapshot whose Redis reading succeeded, nil at first.
	Prev       *monitor.Snapshot
	Held       map[string]Held
	Remedies   Remedies
	Thresholds Thresholds
	// Ignore holds finding ids the operator accepted (Evaluate drops them).
	Ignore map[string]bool
	// Yielded are the held changes the executor found changed by someone else this tick
	// (reconciliation): Decide records them, and the remedies do not take them
	// again until the episode ends.
	Yielded []Yield
	// Stranded are ledger entries of another Redis (the instance's address
	// changed), by setting, with why: a critical finding each until resolved.
	Stranded map[string]string
	Now      time.Time
	// Rand returns a number in [0,1) for jitter; nil means no jitter.
	Rand func() float64
	// Stopping: the guardian is shutting down; only undo what no longer protects
	// writes, start nothing new.
	Stopping bool
}

// Result is one evaluation: what is wrong and what to do about it.
type Result struct {
	Findings  []Finding
	Decisions []Decision
}

// Evaluate is one tick's policy: Diagnose the snapshot, then Decide, with the
// findings the remedies raise about themselves added and the ignored ones dropped.
// A remedy's finding replaces a diagnosed one of the same id: the remedy knows
// more than the snapshot shows (defrag's fragmentation_high says what the
// server answered when asked to defrag, which diagnosis cannot know).
func Evaluate(in Input, st State) (Result, State) {
	kills := TrackOOMKills(st.oomKills, in.Prev, in.Snapshot)
	findings := Diagnose(in.Snapshot, History{Prev: in.Prev, OOMKills: kills}, in.Thresholds, in.Ignore)
	ds, own, st := decide(in, st)
	st.oomKills = kills
	fileValues(in, ds)
	own = append(own, configFileFindings(in)...)
	for setting, why := range in.Stranded {
		own = append(own, Finding{ID: IDLedgerStranded, Severity: Critical,
			Summary: "the ledger holds a change of " + setting + " made on another Redis",
			Cause:   why,
			Fix:     "run redis-guardian restore with the old address (--addr), or check the setting on that Redis by hand and remove the entry from the ledger"})
	}
	own = slices.DeleteFunc(own, func(f Finding) bool { return in.Ignore[f.ID] })
	findings = slices.DeleteFunc(findings, func(g Finding) bool {
		return slices.ContainsFunc(own, func(f Finding) bool { return f.ID == g.ID })
	})
	findings = append(findings, own...)
	if len(own) > 0 {
		sortFindings(findings)
	}
	return Result{Findings: findings, Decisions: ds}, st
}

// Decide chooses remedies. It is pure: the same input and state give the same output.
func Decide(in Input, st State) ([]Decision, State) {
	ds, _, st := decide(in, st)
	return ds, st
}

func decide(in Input, st State) ([]Decision, []Finding, State) {
	return decideOver(Registry, in, st)
}

// decideOver runs the remedies of reg in their order (Registry's; a test runs
// others to show the order changes no remedy's answer).
func decideOver(reg []Remedy, in Input, st State) ([]Decision, []Finding, State) {
	st = st.clone()
	for _, y := range in.Yielded {
		at := y.At
		if at.IsZero() {
			at = in.Now
		}
		st.Shared.Yielded[y.key()] = at
	}
	st.Shared.prune(in.Now)
	s := in.Snapshot
	if s.Redis.Err != nil || !s.Redis.Config.Known() {
		// Nothing can be judged safely without INFO and CONFIG.
		return nil, nil, st
	}
	var ds []Decision
	var fs []Finding
	for _, r := range reg {
		d, f, next, ran := r.decide(in, st.remedies[r.Name()], &st.Shared)
		if !ran {
			continue // not configured
		}
		ds, fs = append(ds, d...), append(fs, f...)
		st.remedies[r.Name()] = next
	}
	urgentFirst(ds)
	return ds, fs, st
}

// urgentFirst moves a tick's urgent decisions before the others, keeping the
// Registry's order within each group: the executor runs them in this order, and
// an urgent one must not wait behind another remedy's durable ledger write.
func urgentFirst(ds []Decision) {
	slices.SortStableFunc(ds, func(a, b Decision) int {
		switch {
		case a.Urgent == b.Urgent:
			return 0
		case a.Urgent:
			return -1
		}
		return 1
	})
}

// Observe records the outcomes of executed decisions: successes count against the
// rate limits, failures back the remedy off so a denied command is not retried in a
// tight loop; a remedy whose Def has Observe sees its own outcomes.
func Observe(st State, now time.Time, outs []Outcome) State {
	st = st.clone()
	for _, o := range outs {
		if o.Decision.Action == ActWarn || o.Decision.Action == ActSuppressed {
			continue
		}
		st.Shared.observe(now, o)
		for _, r := range Registry {
			if r.Name() != o.Decision.Remedy {
				continue
			}
			if next, ok := r.observe(st.remedies[r.Name()], o); ok {
				st.remedies[r.Name()] = next
			}
		}
	}
	return st
}

func (st State) clone() State {
	// Remedy states are values their remedies never modify in place, so a shallow
	// copy of the map keeps the caller's state intact.
	c := State{Shared: st.Shared.clone(), remedies: maps.Clone(st.remedies), oomKills: st.oomKills}
	if c.remedies == nil {
		c.remedies = map[string]any{}
	}
	return c
}

// Backoff returns the retry delay for attempt n (0-based): initial doubling to max,
// with up to 20% jitter either way so many guardians do not fork in step.
func Backoff(n int, initial, maxDelay time.Duration, r func() float64) time.Duration {
	d := initial
	for i := 0; i < n && d < maxDelay; i++ {
		d *= 2
	}
	if d > maxDelay {
		d = maxDelay
	}
	if r != nil {
		d = time.Duration(float64(d) * (0.8 + 0.4*r()))
	}
	return d
}

// DefaultRand is the jitter source the daemon uses.
func DefaultRand() float64 { return rand.Float64() }

// snapshotWontFit is the predictive condition, recomputed from the snapshot so it
// holds whether or not the finding is ignored for alerting.
func snapshotWontFit(s monitor.Snapshot) bool {
	return s.Host.Available && wontFit(s.Host.DataDir, ExpectedSnapshot(s))
}

// wontFit is the one test of "a snapshot of exp bytes does not fit in dir".
func wontFit(dir monitor.DirReading, exp int64) bool {
	return dir.Known && exp > 0 && int64(dir.Free) < exp
}

// StatsTime is when the snapshot's stats section (total_commands_processed,
// sync_full, total_forks) was read: a light tick carries the last full read's
// values, so a rate must be taken at the time they were read, not now.
func StatsTime(in Input) time.Time {
	if t := in.Snapshot.Redis.InfoTime; !t.IsZero() && !t.After(in.Now) {
		return t
	}
	return in.Now
}

// OpsRate is the command rate over the samples window, from deltas of
// total_commands_processed (instantaneous_ops_per_sec is too noisy to act on).
func OpsRate(samples []Sample) (float64, bool) {
	if len(samples) < 2 {
		return 0, false
	}
	a, b := samples[0], samples[len(samples)-1]
	dt := b.T.Sub(a.T).Seconds()
	if dt <= 0 || b.Cmds < a.Cmds {
		return 0, false
	}
	return float64(b.Cmds-a.Cmds) / dt, true
}
