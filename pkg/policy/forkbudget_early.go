package policy

import (
	"fmt"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Early saves: "schedule BGSAVE during low-traffic periods". A fork child
// copies every page the server writes while it runs, so the same save costs
// less memory at a quiet moment than in a burst of writes. A save whose save
// point has its changes already and comes due within the last early_lead share
// of its seconds is started now (BGSAVE, taking a fork slot first) when the
// writes of the last tick ran at no more than quiet_ratio of their rate since
// the last save, a slot is free and the copy-on-write fits. Redis's save point
// is reached no later than it would be: the save only moves earlier, and the
// next one counts from it as from any save.
//
// Nothing starts early while a save failure is predicted (a fork that would
// fail, a snapshot that would not fit: stop_writes' business), while the last
// save failed (bgsave_retry's), while a child runs or a rewrite is scheduled,
// or within earlyEvery of the last early save (a BGSAVE that keeps failing is
// not repeated every tick).

// ReasonSaveEarly is the reason of an early save.
const ReasonSaveEarly = "save_early"

// earlyEvery is how often an early save may be started at most.
const earlyEvery = 30 * time.Second

// changeSample is one tick's reading of rdb_changes_since_last_save.
type changeSample struct {
	T        time.Time
	Changes  int64
	LastSave int64
}

// earlySave returns the early save to start now, if any: fits says the
// expected copy-on-write fits the room, last is the previous tick's reading.
func (st *forkBudgetState) earlySave(in Input, c *ForkBudgetConfig, save string, fits bool, last changeSample) (Decision, bool) {
	s := in.Snapshot
	info := s.Redis.Info
	// (An early save never goes ahead of saves that wait their turn.)
	if !c.EarlySave || !fits || s.Fork.Free() == 0 || s.Fork.Mine || len(s.Fork.Waiters) > 0 || info.Loading || info.AOFRewriteScheduled ||
		info.RDBLastBgsaveStatus == "err" || info.RDBLastSaveTime <= 0 ||
		!st.EarlyAt.IsZero() && in.Now.Sub(st.EarlyAt) < earlyEvery {
		return Decision{}, false
	}
	if _, failing := PredictSaveFailure(s); failing {
		return Decision{}, false
	}
	if last.T.IsZero() || last.LastSave != info.RDBLastSaveTime {
		return Decision{}, false
	}
	since := in.Now.Sub(time.Unix(info.RDBLastSaveTime, 0))
	dt := s.Time.Sub(last.T).Seconds()
	if since < time.Second || dt <= 0 {
		return Decision{}, false
	}
	changes := info.RDBChangesSinceLastSave
	avg := float64(changes) / since.Seconds()
	now := float64(max(changes-last.Changes, 0)) / dt
	if now > c.QuietRatio*avg {
		return Decision{}, false
	}
	cfg := monitor.RedisConfig{SettingSave: save}
	for _, sp := range cfg.SavePoints() {
		due := time.Duration(sp.Seconds+1) * time.Second
		lead := time.Duration(float64(sp.Seconds) * c.EarlyLead * float64(time.Second))
		if sp.Changes <= 0 || changes < sp.Changes || since >= due || since < due-lead {
			continue
		}
		st.EarlyAt = in.Now
		return Decision{Remedy: RemedyForkBudget, Action: ActBgsave, Reason: ReasonSaveEarly,
			Detail: fmt.Sprintf("save point %q comes due in %s: save now, at a quiet moment (%.0f changes/s against %.0f/s since the last save)",
				fmt.Sprintf("%d %d", sp.Seconds, sp.Changes), round(due-since), now, avg)}, true
	}
	return Decision{}, false
}
