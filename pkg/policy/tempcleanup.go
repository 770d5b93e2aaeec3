package policy

import (
	"fmt"
	"time"
)

// RemedyTempCleanup removes Redis's own temp files left by dead processes (a
// SIGKILLed or OOM-killed parent leaves them, as large as the dataset), after the
// rules of StaleTemp; at once when the disk is full, because every byte is needed
// then. It keeps no state of its own.
const RemedyTempCleanup = "temp_cleanup"

var tempCleanup = Def[TempCleanupConfig, noState]{
	Name: RemedyTempCleanup,
	Defaults: func() *TempCleanupConfig {
		return &TempCleanupConfig{
			Limits: Limits{Enabled: true, MaxPerHour: 60},
			MinAge: 10 * time.Minute,
		}
	},
	Decide: decideTempCleanup,
}

// TempCleanupConfig configures the removal of Redis's stale temp files.
type TempCleanupConfig struct {
	Limits
	MinAge time.Duration
}

// Configure reads remedies.temp_cleanup.
func (c *TempCleanupConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Duration("min_age", &c.MinAge, 0)
}

func decideTempCleanup(in Input, r *TempCleanupConfig, st noState, sh *Shared) ([]Decision, []Finding, noState) {
	s := in.Snapshot
	if in.Stopping || !r.Enabled || !s.Host.Available {
		return nil, nil, st
	}
	minAge := r.MinAge
	if d := s.Host.DataDir; d.Known && (d.Free == 0 || snapshotWontFit(s)) {
		minAge = 0 // the disk is full: every byte of a dead child's file is needed now
	}
	if s.Redis.Info.AOFLastWriteStatus == "err" && aofDirOf(s).Known && aofDirOf(s).Free < 1<<20 {
		minAge = 0 // AOF writes fail on a full disk and no setting lifts that: free what is Redis's own garbage
	}
	if !sh.Allowed(RemedyTempCleanup, r.Limits, in.Now) {
		return nil, nil, st
	}
	// The hourly cap counts files; a cooldown allows one file per tick. Observe
	// records each deletion that succeeded.
	budget := sh.Budget(RemedyTempCleanup, r.Limits, in.Now)
	if r.Cooldown > 0 {
		budget = min(budget, 1)
	}
	var ds []Decision
	for _, f := range s.Host.TempFiles {
		if len(ds) >= budget {
			break
		}
		if !StaleTemp(f, s.Redis.Info, in.Now, minAge) {
			continue
		}
		ds = append(ds, Decision{Remedy: RemedyTempCleanup, Action: ActDeleteTemp, Path: f.Path, MinAge: minAge,
			Reason: IDStaleTempFiles, Detail: fmt.Sprintf("%s temp file of dead pid %d, %s old", f.Kind, f.PID, round(in.Now.Sub(f.ModTime)))})
	}
	return ds, nil, st
}
