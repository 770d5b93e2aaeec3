package policy

import (
	"fmt"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// RemedyBgsaveRetry retries a failed BGSAVE with backoff, and at once when the
// cause visibly clears (the data dir writable again, room on the disk again):
// Redis's own autosave retry waits for a save point's period, which can be 15
// minutes.
const RemedyBgsaveRetry = "bgsave_retry"

var bgsaveRetry = Def[BgsaveRetryConfig, bgsaveRetryState]{
	Name: RemedyBgsaveRetry,
	Defaults: func() *BgsaveRetryConfig {
		return &BgsaveRetryConfig{
			Limits:         Limits{Enabled: true, MaxPerHour: 60},
			InitialBackoff: 5 * time.Second,
			MaxBackoff:     5 * time.Minute,
		}
	},
	Decide:  decideBgsaveRetry,
	Observe: observeBgsaveRetry,
}

// BgsaveRetryConfig configures the retry of a failed BGSAVE.
type BgsaveRetryConfig struct {
	Limits
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

type bgsaveRetryState struct {
	SaveFailedAt time.Time
	RetryAttempt int
	NextRetry    time.Time
	// Cause readings of the previous tick, to notice a cause clearing.
	PrevKnown    bool
	PrevWritable monitor.Tri
	PrevFree     uint64
}

// Configure reads remedies.bgsave_retry.
func (c *BgsaveRetryConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Duration("initial_backoff", &c.InitialBackoff, 100*time.Millisecond)
	p.Duration("max_backoff", &c.MaxBackoff, 100*time.Millisecond)
	if c.MaxBackoff < c.InitialBackoff {
		p.Problem("max_backoff", "%s is below initial_backoff %s", c.MaxBackoff, c.InitialBackoff)
	}
}

// observeBgsaveRetry counts the attempts that went out, which the backoff grows with.
func observeBgsaveRetry(st bgsaveRetryState, o Outcome) bgsaveRetryState {
	if o.OK && o.Decision.Action == ActBgsave {
		st.RetryAttempt++
	}
	return st
}

func decideBgsaveRetry(in Input, r *BgsaveRetryConfig, st bgsaveRetryState, sh *Shared) ([]Decision, []Finding, bgsaveRetryState) {
	ds := st.decide(in, r, sh)
	h := in.Snapshot.Host
	st.PrevKnown = h.Available && h.DataDir.Known
	st.PrevWritable = h.DataDir.Writable
	st.PrevFree = h.DataDir.Free
	return ds, nil, st
}

func (st *bgsaveRetryState) decide(in Input, r *BgsaveRetryConfig, sh *Shared) []Decision {
	s := in.Snapshot
	info := s.Redis.Info
	if info.RDBLastBgsaveStatus != "err" {
		// Any successful save, Redis's own autosave included, ends the retries.
		st.SaveFailedAt, st.RetryAttempt, st.NextRetry = time.Time{}, 0, time.Time{}
		return nil
	}
	if st.SaveFailedAt.IsZero() {
		st.SaveFailedAt = in.Now
		st.RetryAttempt = 0
		st.NextRetry = in.Now.Add(Backoff(0, r.InitialBackoff, r.MaxBackoff, in.Rand))
	}
	if in.Stopping || info.RDBBgsaveInProgress || info.Loading || OtherForkRunning(s) {
		// Stopping, a save is already running, Redis cannot save yet, or another
		// instance of the host holds the last fork slot (fork_budget).
		return nil
	}
	cleared := st.causeCleared(s)
	if cleared == "" && in.Now.Before(st.NextRetry) {
		return nil
	}
	if snapshotWontFit(s) && cleared == "" {
		// Forking a save that cannot fit only burns a fork; wait for space.
		st.NextRetry = in.Now.Add(Backoff(st.RetryAttempt, r.InitialBackoff, r.MaxBackoff, in.Rand))
		return nil
	}
	if !sh.Allowed(RemedyBgsaveRetry, r.Limits, in.Now) {
		return nil
	}
	st.NextRetry = in.Now.Add(Backoff(st.RetryAttempt+1, r.InitialBackoff, r.MaxBackoff, in.Rand))
	detail := fmt.Sprintf("retry %d after the save failed %s ago", st.RetryAttempt+1, round(in.Now.Sub(st.SaveFailedAt)))
	if cleared != "" {
		detail = cleared + ": retrying at once"
	}
	return []Decision{{Remedy: RemedyBgsaveRetry, Action: ActBgsave, Reason: IDBgsaveFailed, Detail: detail,
		Schedule: info.AOFRewriteInProgress || info.ModuleForkInProgress}}
}

// causeCleared says which reading that explained the failure has recovered since
// the previous tick, "" when none has.
func (st *bgsaveRetryState) causeCleared(s monitor.Snapshot) string {
	h := s.Host
	if !st.PrevKnown || !h.Available || !h.DataDir.Known {
		return ""
	}
	cleared := ""
	if st.PrevWritable == monitor.No && h.DataDir.Writable == monitor.Yes {
		cleared = "the data dir is writable again"
	}
	exp := uint64(max(ExpectedSnapshot(s), 0))
	if st.PrevFree < exp && h.DataDir.Free >= exp && st.PrevFree != h.DataDir.Free {
		cleared = fmt.Sprintf("the data dir has room again (%s free)", HumanBytes(int64(h.DataDir.Free)))
	}
	return cleared
}
