package policy

import (
	"fmt"
	"strings"
	"time"
)

// RemedyStopWrites lifts an RDB MISCONF by holding stop-writes-on-bgsave-error no
// while saves fail (or, predictively, while the next snapshot cannot fit), and
// sets it back once a save succeeds.
const RemedyStopWrites = "stop_writes"

var stopWrites = Def[StopWritesConfig, stopWritesState]{
	Name:     RemedyStopWrites,
	Settings: []Setting{stopWritesSetting},
	Defaults: func() *StopWritesConfig {
		return &StopWritesConfig{
			Limits:          Limits{Enabled: true, Cooldown: 0, MaxPerHour: 30},
			Predictive:      true,
			WarnEvery:       5 * time.Minute,
			PredictiveDwell: 30 * time.Second,
		}
	},
	Decide: decideStopWrites,
}

// StopWritesConfig configures the stop-writes-on-bgsave-error toggle.
type StopWritesConfig struct {
	Limits
	// RequireAOF: only toggle while AOF is on and healthy, for operators who accept
	// writes without snapshots only when the AOF still makes them durable.
	RequireAOF bool
	// Predictive: toggle before a save fails when the guardian sees it cannot fit.
	Predictive bool
	// WarnEvery repeats the "still held" warning.
	WarnEvery time.Duration
	// PredictiveDwell is how long the next snapshot must fit with room to spare
	// (predictiveMargin) before a predictive toggle is given back: free space
	// swinging around the snapshot's size must not flap the setting.
	PredictiveDwell time.Duration
}

type stopWritesState struct {
	LastHeldWarn time.Time
	// RoomySince is when the next snapshot started to fit with the margin.
	RoomySince time.Time
}

// predictiveMargin is the room beyond the expected snapshot that a predictive
// toggle waits for before it is given back: a tenth of the snapshot, at least 1 MiB.
func predictiveMargin(exp int64) int64 { return max(exp/10, 1<<20) }

// Configure reads remedies.stop_writes.
func (c *StopWritesConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Bool("require_aof", &c.RequireAOF)
	p.Bool("predictive", &c.Predictive)
	p.Duration("warn_every", &c.WarnEvery, time.Second)
	p.Duration("predictive_dwell", &c.PredictiveDwell, 0)
}

func decideStopWrites(in Input, r *StopWritesConfig, st stopWritesState, sh *Shared) ([]Decision, []Finding, stopWritesState) {
	s := in.Snapshot
	cfg, info := s.Redis.Config, s.Redis.Info
	held, isHeld := in.Held[SettingStopWrites]
	if isHeld && held.Remedy != RemedyStopWrites {
		// Another remedy holds the setting (replica_guard on a replica): it is
		// "no" already, so no MISCONF can happen, and giving it back is theirs.
		return nil, nil, st
	}
	failed := info.RDBLastBgsaveStatus == "err"
	pred, predicted := PredictSaveFailure(s)
	predict := r.Predictive && predicted
	aofOK := info.AOFEnabled && info.AOFLastWriteStatus == "ok"

	if !failed && !predict {
		// A yield to the operator lasts until a save succeeds after it: an
		// operator who sets the toggle back while the guardian still holds it
		// after a save succeeded (its hysteresis) chose the protection, and a new
		// failure seconds later must not take it from them (the soak, seed
		// 20261207: set back at 17:29:14, toggled again at 17:29:21 for a new
		// fork failure). A save in the yield's own second is not told apart: the
		// operator keeps it until the next.
		if y := sh.YieldedAt(RemedyStopWrites, SettingStopWrites); y.IsZero() || info.RDBLastSaveTime > y.Unix() {
			sh.EndEpisode(RemedyStopWrites, SettingStopWrites)
		}
		sh.EndSuppression(RemedyStopWrites)
	}
	if isHeld {
		if !failed && !predict {
			if !st.roomy(in, held, r) {
				return nil, nil, st // the hysteresis: wait until the snapshot fits with room to spare
			}
			if replicaHoldKeep(in) {
				return nil, nil, st // demoted while holding: on a replica the toggle is what keeps it alive
			}
			st.LastHeldWarn, st.RoomySince = time.Time{}, time.Time{}
			return []Decision{{Remedy: RemedyStopWrites, Action: ActUndo, Setting: SettingStopWrites, Value: held.Original,
				Reason: IDMisconfRDB, Detail: "a save succeeded and the next one fits: writes are protected by snapshots again"}}, nil, st
		}
		st.RoomySince = time.Time{}
		if in.Stopping {
			return nil, nil, st // keep it: a restart of the guardian must never open a MISCONF window
		}
		if r.WarnEvery > 0 && (st.LastHeldWarn.IsZero() || in.Now.Sub(st.LastHeldWarn) >= r.WarnEvery) {
			first := st.LastHeldWarn.IsZero()
			st.LastHeldWarn = in.Now
			if !first {
				return []Decision{{Remedy: RemedyStopWrites, Action: ActWarn, Setting: SettingStopWrites, Reason: IDBgsaveFailed,
					Detail: fmt.Sprintf("stop-writes-on-bgsave-error held at %s for %s; %d changes are not on disk yet",
						held.Value, round(in.Now.Sub(held.Since)), info.RDBChangesSinceLastSave)}}, nil, st
			}
		}
		return nil, nil, st
	}
	st.RoomySince = time.Time{}
	if in.Stopping || !savePointsSet(in) || !cfg.StopWritesOnBgsaveError() {
		return nil, nil, st
	}
	if sh.IsYielded(RemedyStopWrites, SettingStopWrites) {
		return nil, nil, st
	}
	if r.RequireAOF && !aofOK {
		return nil, nil, st
	}
	switch {
	case failed:
		// Writes are being rejected now: lifting that is never held back by the
		// cooldown or the hourly cap (undos do not count either). Only a failing
		// command's backoff applies, so a denied CONFIG is not retried every tick.
		d := Decision{Remedy: RemedyStopWrites, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: IDMisconfRDB,
			Detail: "the last RDB save failed: lift MISCONF so writes are accepted while the cause is fixed", Urgent: true}
		if lim := sh.Limit(RemedyStopWrites, r.Limits, in.Now); lim == LimitDisabled {
			return nil, nil, st
		} else if lim == LimitBackoff {
			return sh.Gate(r.Limits, in.Now, d), nil, st
		}
		sh.EndSuppression(RemedyStopWrites)
		return []Decision{d}, nil, st
	case predict:
		d := Decision{Remedy: RemedyStopWrites, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: pred.ID, Detail: pred.Detail}
		return sh.Gate(r.Limits, in.Now, d), nil, st
	}
	return nil, nil, st
}

// savePointsSet reports whether Redis has save points, or will have them again
// when fork_budget gives back the `save ""` it holds: a save that fails during
// that hold (an operator's BGSAVE, a child already running) rejects every write
// the moment save comes back, so the toggle must already be there. The soak
// found it (seed 1234): 1 s of MISCONF, from fork_budget's undo to the next tick.
func savePointsSet(in Input) bool {
	if in.Snapshot.Redis.Config.SavePointsSet() {
		return true
	}
	h, ok := in.Held[SettingSave]
	return ok && h.Remedy == RemedyForkBudget && strings.TrimSpace(h.Original) != ""
}

// roomy reports whether a held toggle may be given back now. After a real
// failure it may as soon as a save succeeded and the next one fits with the
// margin; a predictive toggle also waits PredictiveDwell with that room.
func (st *stopWritesState) roomy(in Input, held Held, r *StopWritesConfig) bool {
	if !predictionRoomy(in.Snapshot) {
		st.RoomySince = time.Time{}
		return false
	}
	if !isPrediction(held.Reason) || r.PredictiveDwell <= 0 {
		return true
	}
	if st.RoomySince.IsZero() {
		st.RoomySince = in.Now
	}
	return in.Now.Sub(st.RoomySince) >= r.PredictiveDwell
}
