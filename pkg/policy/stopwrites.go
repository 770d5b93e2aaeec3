package policy

import (
	"fmt"
	"time"
)

// stopWrites lifts an RDB MISCONF by holding stop-writes-on-bgsave-error no while
// saves fail (or, predictively, while the next snapshot cannot fit), and sets it
// back once a save succeeds.
type stopWrites struct{}

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
}

type stopWritesState struct {
	LastHeldWarn time.Time
}

func (stopWrites) Name() string { return RemedyStopWrites }

func (stopWrites) Settings() []Setting { return []Setting{{Name: SettingStopWrites}} }

func (stopWrites) DefaultConfig() RemedyConfig {
	return &StopWritesConfig{
		Limits:     Limits{Enabled: true, Cooldown: 0, MaxPerHour: 30},
		Predictive: true,
		WarnEvery:  5 * time.Minute,
	}
}

// Configure reads remedies.stop_writes.
func (c *StopWritesConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Bool("require_aof", &c.RequireAOF)
	p.Bool("predictive", &c.Predictive)
	p.Duration("warn_every", &c.WarnEvery, time.Second)
}

// RateLimits returns the remedy's rate limits.
func (c *StopWritesConfig) RateLimits() Limits { return c.Limits }

// Clone copies the configuration.
func (c *StopWritesConfig) Clone() RemedyConfig { d := *c; return &d }

func (stopWrites) Decide(in Input, rc RemedyConfig, raw any, sh *Shared) ([]Decision, []Finding, any) {
	r := rc.(*StopWritesConfig)
	st, _ := raw.(stopWritesState)
	s := in.Snapshot
	cfg, info := s.Redis.Config, s.Redis.Info
	held, isHeld := in.Held[SettingStopWrites]
	failed := info.RDBLastBgsaveStatus == "err"
	wontFit := r.Predictive && snapshotWontFit(s)
	aofOK := info.AOFEnabled && info.AOFLastWriteStatus == "ok"

	if !failed && !wontFit {
		sh.EndEpisode(SettingStopWrites)
	}
	if isHeld {
		if !failed && !wontFit {
			st.LastHeldWarn = time.Time{}
			return []Decision{{Remedy: RemedyStopWrites, Action: ActUndo, Setting: SettingStopWrites, Value: held.Original,
				Reason: IDMisconfRDB, Detail: "a save succeeded and the next one fits: writes are protected by snapshots again"}}, nil, st
		}
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
	if in.Stopping || !cfg.SavePointsSet() || !cfg.StopWritesOnBgsaveError() {
		return nil, nil, st
	}
	if sh.IsYielded(SettingStopWrites) {
		return nil, nil, st
	}
	if r.RequireAOF && !aofOK {
		return nil, nil, st
	}
	var reason, detail string
	switch {
	case failed:
		reason, detail = IDMisconfRDB, "the last RDB save failed: lift MISCONF so writes are accepted while the cause is fixed"
	case wontFit:
		reason, detail = IDSnapshotWontFit, "the next snapshot cannot fit on disk: lift MISCONF before the save fails"
	default:
		return nil, nil, st
	}
	if !sh.Allowed(RemedyStopWrites, r.Limits, in.Now) {
		return nil, nil, st
	}
	return []Decision{{Remedy: RemedyStopWrites, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: reason, Detail: detail}}, nil, st
}
