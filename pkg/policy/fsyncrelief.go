package policy

import (
	"fmt"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// RemedyFsyncRelief eases a slow disk while a fork child writes: a rewrite or a save
// competes with the AOF's fsync of every second, and when the disk cannot keep
// up Redis blocks writes ("Asynchronous AOF fsync is taking too long (disk is
// busy?)", aof_delayed_fsync growing). Holding no-appendfsync-on-rewrite yes while
// a child runs skips those fsyncs, the troubleshooting guides' advice, at a price:
// a crash during the rewrite can lose up to about 30 s of writes (the kernel's
// writeback delay) instead of 1 s. So it is opt-in, and it gives the setting back
// as soon as no child runs.
const RemedyFsyncRelief = "fsync_relief"

// SettingNoFsyncOnRewrite is the setting fsync_relief holds while a child writes.
const SettingNoFsyncOnRewrite = "no-appendfsync-on-rewrite"

var fsyncRelief = Def[FsyncReliefConfig, fsyncReliefState]{
	Name:     RemedyFsyncRelief,
	Settings: []Setting{{Name: SettingNoFsyncOnRewrite, Valid: validYesNo}},
	Defaults: func() *FsyncReliefConfig {
		return &FsyncReliefConfig{Limits: Limits{Enabled: false, MaxPerHour: 12}, Recent: 2 * time.Minute} // opt-in: it trades durability
	},
	Decide: decideFsyncRelief,
}

// FsyncReliefConfig configures the slow-fsync remedy.
type FsyncReliefConfig struct {
	Limits
	// Recent is how long a sign of a slow disk (the log line, a rise of
	// aof_delayed_fsync) counts.
	Recent time.Duration
}

type fsyncReliefState struct {
	// SlowAt is when the disk last showed it was slow.
	SlowAt time.Time
	// PrevDelayed is aof_delayed_fsync at the previous tick.
	PrevDelayed int64
}

// Configure reads remedies.fsync_relief.
func (c *FsyncReliefConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Duration("recent", &c.Recent, time.Second)
}

func decideFsyncRelief(in Input, r *FsyncReliefConfig, st fsyncReliefState, sh *Shared) ([]Decision, []Finding, fsyncReliefState) {
	info, cfg := in.Snapshot.Redis.Info, in.Snapshot.Redis.Config
	if info.AOFDelayedFsync > st.PrevDelayed && st.PrevDelayed > 0 {
		st.SlowAt = in.Now
	}
	st.PrevDelayed = info.AOFDelayedFsync
	if ev, ok := in.Snapshot.Log.Last[monitor.LogAOFFsyncSlow]; ok && ev.Time.After(st.SlowAt) {
		st.SlowAt = ev.Time
	}
	slow := !st.SlowAt.IsZero() && in.Now.Sub(st.SlowAt) < r.Recent
	child := info.AOFRewriteInProgress || info.RDBBgsaveInProgress
	held, isHeld := in.Held[SettingNoFsyncOnRewrite]
	mine := isHeld && held.Remedy == RemedyFsyncRelief
	if mine {
		if child && info.AOFEnabled && !in.Stopping {
			return nil, nil, st
		}
		return []Decision{{Remedy: RemedyFsyncRelief, Action: ActUndo, Setting: SettingNoFsyncOnRewrite, Value: held.Original,
			Reason: IDAOFFsyncSlow, Detail: "no fork child writes any more: fsync on every second again"}}, nil, st
	}
	if !slow {
		sh.EndEpisode(RemedyFsyncRelief, SettingNoFsyncOnRewrite)
	}
	if !r.Enabled || in.Stopping || isHeld || !slow || !child || !info.AOFEnabled ||
		cfg["appendfsync"] == "no" || cfg[SettingNoFsyncOnRewrite] == "yes" || sh.IsYielded(RemedyFsyncRelief, SettingNoFsyncOnRewrite) {
		return nil, nil, st
	}
	what := "an AOF rewrite"
	if info.RDBBgsaveInProgress {
		what = "a save"
	}
	return sh.Gate(r.Limits, in.Now, Decision{Remedy: RemedyFsyncRelief, Action: ActSet, Setting: SettingNoFsyncOnRewrite, Value: "yes",
		Reason: IDAOFFsyncSlow, Detail: fmt.Sprintf("the disk is too slow for the AOF's fsync while %s runs (aof_delayed_fsync %d): skip those fsyncs until it ends", what, info.AOFDelayedFsync)}), nil, st
}
