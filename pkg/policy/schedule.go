package policy

import (
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Poll windows around a save Redis starts by itself. Redis checks its save
// points in serverCron (hz 10: every 100 ms) against server.unixtime, which has
// whole seconds, and saves once unixtime - lastsave > seconds: at the first cron
// at or after lastsave + seconds + 1. A fork that fails there makes MISCONF at
// once, and with no log line to wake the guardian only a tick sees it.
const (
	// saveDueEarly is how long before the earliest moment a save can start the
	// close polling begins. Its ticks read the host again and may toggle on a
	// prediction, recorded durably first: a ledger fsync on a disk busy with
	// Redis's writes takes tens of milliseconds, and the tick must end before the
	// fork. 50 ms was too little on a loaded machine.
	saveDueEarly = 250 * time.Millisecond
	// saveDueLate is how long after that moment it goes on: two cron periods
	// and the latency of a busy server.
	saveDueLate = 300 * time.Millisecond
)

// Poll is when the loop ticks next, and whether that tick must read the host
// again rather than reuse the last reading.
type Poll struct {
	Wait time.Duration
	// FreshHost is set for the ticks just before a save comes due: a fault
	// that appeared since the last regular tick (a full disk, a data dir Redis
	// cannot write, its process limit reached) is then predicted before the save
	// runs into it.
	FreshHost bool
}

// NextPoll is how long the loop may wait before its next tick: interval, unless
// something can turn into a rejected write sooner without a log line to say so.
// It polls every fast while a fork child runs (a killed or failing child makes
// MISCONF the moment it ends), and around the moment Redis's next automatic save
// is due (a fork that fails there makes MISCONF at once). prev is the previous
// tick's snapshot (nil at first), for the rate at which keys change. fast <= 0
// turns the close polling off.
func NextPoll(s monitor.Snapshot, prev *monitor.Snapshot, now time.Time, interval, fast time.Duration) Poll {
	if fast <= 0 || fast >= interval || s.Redis.Err != nil {
		return Poll{Wait: interval}
	}
	info := s.Redis.Info
	if info.ForkChildRunning() {
		return Poll{Wait: fast}
	}
	if prev != nil && prev.Redis.Err == nil && prev.Redis.Info.ForkChildRunning() {
		// A child just ended: a save point that came due meanwhile fires at
		// Redis's next cron.
		return Poll{Wait: fast}
	}
	if !s.Redis.Config.SavePointsSet() && s.Fork.Known && len(s.Fork.Others) > 0 {
		// No save points while other instances hold fork slots: fork_budget may
		// hold this one's save, to give back the moment a slot frees.
		return Poll{Wait: fast}
	}
	start, end, ok := nextSaveWindow(s, prev, now)
	switch {
	case !ok || end.Before(now):
		return Poll{Wait: interval}
	case !start.After(now):
		// Inside the window every tick reads the host again: a fault that
		// appeared since the window opened is still predicted before the fork.
		// A dozen host readings per save.
		return Poll{Wait: fast, FreshHost: true}
	case start.Sub(now) < interval:
		return Poll{Wait: max(start.Sub(now), fast/2), FreshHost: true}
	}
	return Poll{Wait: interval}
}

// nextSaveWindow is when Redis's next automatic save may start, for the save
// point that comes first: from saveDueEarly before the earliest moment to
// saveDueLate after it. A save point whose changes are not reached yet is
// projected from the rate at which rdb_changes_since_last_save grew since the
// previous tick; the window then widens by a quarter of the wait, as the rate
// is an estimate.
func nextSaveWindow(s monitor.Snapshot, prev *monitor.Snapshot, now time.Time) (start, end time.Time, ok bool) {
	info, cfg := s.Redis.Info, s.Redis.Config
	if !cfg.SavePointsSet() || info.RDBLastSaveTime <= 0 || info.Loading {
		return time.Time{}, time.Time{}, false
	}
	changes := info.RDBChangesSinceLastSave
	rate := 0.0 // changes per second
	if prev != nil && prev.Redis.Err == nil && prev.Redis.Info.RDBLastSaveTime == info.RDBLastSaveTime {
		if dt := s.Time.Sub(prev.Time).Seconds(); dt > 0 && changes > prev.Redis.Info.RDBChangesSinceLastSave {
			rate = float64(changes-prev.Redis.Info.RDBChangesSinceLastSave) / dt
		}
	}
	for _, sp := range cfg.SavePoints() {
		if sp.Changes <= 0 {
			continue // "save N 0" never fires by itself
		}
		at := time.Unix(info.RDBLastSaveTime+sp.Seconds+1, 0)
		slack := time.Duration(0)
		if changes < sp.Changes {
			if rate <= 0 {
				continue
			}
			reach := now.Add(time.Duration(float64(sp.Changes-changes) / rate * float64(time.Second)))
			if reach.After(at) {
				slack = reach.Sub(now) / 4
				at = reach
			}
		}
		st, en := at.Add(-saveDueEarly-slack), at.Add(saveDueLate+slack)
		if !ok || st.Before(start) {
			start, end, ok = st, en, true
		}
	}
	return start, end, ok
}
