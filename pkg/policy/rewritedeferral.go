package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// RemedyRewriteDeferral holds auto-aof-rewrite-percentage 0 while the command
// rate is high (every rewrite forks, and a fork under load stalls clients and
// inflates copy-on-write), gives Redis its schedule back when load has been low
// for a dwell, and then runs BGREWRITEAOF in the quiet window if the AOF has grown.
const RemedyRewriteDeferral = "rewrite_deferral"

var rewriteDeferral = Def[RewriteDeferralConfig, rewriteDeferralState]{
	Name:     RemedyRewriteDeferral,
	Settings: []Setting{rewritePercentSetting},
	Defaults: func() *RewriteDeferralConfig {
		return &RewriteDeferralConfig{
			Limits:      Limits{Enabled: true, MaxPerHour: 12},
			HighOps:     10000,
			LowOps:      5000,
			Window:      10 * time.Second,
			Dwell:       30 * time.Second,
			MaxDeferral: time.Hour,
		}
	},
	Decide: decideRewriteDeferral,
}

// RewriteDeferralConfig configures the deferral of AOF rewrites under load.
type RewriteDeferralConfig struct {
	Limits
	HighOps     float64
	LowOps      float64
	Window      time.Duration
	Dwell       time.Duration
	MaxDeferral time.Duration
}

type rewriteDeferralState struct {
	Samples  []Sample
	LowSince time.Time
}

// Configure reads remedies.rewrite_deferral.
func (c *RewriteDeferralConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Positive("high_ops", &c.HighOps)
	p.Positive("low_ops", &c.LowOps)
	p.Duration("window", &c.Window, 100*time.Millisecond)
	p.Duration("dwell", &c.Dwell, 0)
	p.Duration("max_deferral", &c.MaxDeferral, time.Second)
	if c.LowOps > c.HighOps {
		p.Problem("low_ops", "%v is above high_ops %v", c.LowOps, c.HighOps)
	}
}

func decideRewriteDeferral(in Input, r *RewriteDeferralConfig, st rewriteDeferralState, sh *Shared) ([]Decision, []Finding, rewriteDeferralState) {
	st.Samples = window(st.Samples, in, r.Window)
	rate, ok := OpsRate(st.Samples)
	full := ok && in.Now.Sub(st.Samples[0].T) >= r.Window/2
	ds := st.decide(in, r, sh, rate, full)
	return ds, deferredTooLong(in, r), st
}

// window adds this tick's sample to a copy of samples and keeps the last w of
// them; a restart (the counter going down) starts a new window.
func window(samples []Sample, in Input, w time.Duration) []Sample {
	cmds := in.Snapshot.Redis.Info.TotalCommandsProcessed
	at := StatsTime(in)
	if n := len(samples); n > 0 && cmds < samples[n-1].Cmds {
		samples = nil
	}
	if n := len(samples); n > 0 && !at.After(samples[n-1].T) {
		return samples // stats not read again since the last sample
	}
	samples = append(slices.Clone(samples), Sample{T: at, Cmds: cmds})
	// Keep two samples at least: with stats read only every info_refresh, a
	// window shorter than that still has a rate, over the last two reads.
	cut := 0
	for cut < len(samples)-2 && in.Now.Sub(samples[cut+1].T) >= w {
		cut++
	}
	return samples[cut:]
}

func (st *rewriteDeferralState) decide(in Input, r *RewriteDeferralConfig, sh *Shared, rate float64, full bool) []Decision {
	info, cfg := in.Snapshot.Redis.Info, in.Snapshot.Redis.Config
	held, isHeld := in.Held[SettingRewritePercent]
	if isHeld && held.Remedy != RemedyRewriteDeferral {
		// Another remedy holds the percentage (rewrite_retry, during a rewrite
		// storm): automatic rewrites are stopped already, and giving the setting
		// back is that remedy's call, not the load's.
		st.LowSince = time.Time{}
		return nil
	}
	undo := func(detail string) Decision {
		return Decision{Remedy: RemedyRewriteDeferral, Action: ActUndo, Setting: SettingRewritePercent, Value: held.Original,
			Reason: IDAOFGrowthHigh, Detail: detail}
	}
	if in.Stopping {
		if isHeld {
			// Nobody watches the load once the guardian is gone: give Redis its own
			// rewrite schedule back.
			return []Decision{undo("the guardian is stopping")}
		}
		return nil
	}
	if !info.AOFEnabled {
		if isHeld {
			return []Decision{undo("AOF is off")}
		}
		return nil
	}
	if isHeld && diskTight(in.Snapshot, 2) {
		// The AOF grows while rewrites wait: end the deferral while the disk still
		// holds a new base, rather than wait for a quiet time that may come only
		// after the disk is full and no rewrite can fit.
		dir := aofDirOf(in.Snapshot)
		st.LowSince = time.Time{}
		return []Decision{undo(fmt.Sprintf("%s has %s free, under twice the %s a rewrite's new base needs: rewrites are due now, under load, before the AOF fills the disk",
			dir.Path, HumanBytes(int64(dir.Free)), HumanBytes(ExpectedRewrite(in.Snapshot))))}
	}
	if isHeld {
		if full && rate < r.LowOps {
			if st.LowSince.IsZero() {
				st.LowSince = in.Now
			}
		} else {
			st.LowSince = time.Time{}
		}
		if !st.LowSince.IsZero() && in.Now.Sub(st.LowSince) >= r.Dwell {
			ds := []Decision{undo(fmt.Sprintf("load fell to %.0f ops/s for %s", rate, round(in.Now.Sub(st.LowSince))))}
			st.LowSince = time.Time{}
			return append(ds, quietRewrite(in, r, sh, rate)...)
		}
		return nil
	}
	st.LowSince = time.Time{}
	if full && rate < r.LowOps {
		// The high-load episode is over: an operator's choice made during it no
		// longer stands in the way of the next deferral.
		sh.EndEpisode(RemedyRewriteDeferral, SettingRewritePercent)
	}
	if sh.IsYielded(RemedyRewriteDeferral, SettingRewritePercent) {
		// An operator set the percentage while the guardian deferred: theirs wins
		// for the rest of this episode (no new deferral, no rewrite of our own).
		return nil
	}
	if full && rate > r.HighOps && cfg.Int(SettingRewritePercent, 100) != 0 && !diskTight(in.Snapshot, 3) && sh.Allowed(RemedyRewriteDeferral, r.Limits, in.Now) {
		return []Decision{{Remedy: RemedyRewriteDeferral, Action: ActSet, Setting: SettingRewritePercent, Value: "0",
			Reason: IDAOFGrowthHigh, Detail: fmt.Sprintf("load %.0f ops/s is above %.0f: defer AOF rewrites (each one forks)", rate, r.HighOps)}}
	}
	if full && rate < r.LowOps {
		return quietRewrite(in, r, sh, rate)
	}
	return nil
}

// diskTight reports whether the AOF dir's free space is below factor times the
// new base a rewrite writes: a deferral on such a disk may let the AOF's growth
// eat the room the rewrite needs. It ends below 2 and does not start below 3, so
// it does not flap.
func diskTight(s monitor.Snapshot, factor int64) bool {
	exp := ExpectedRewrite(s)
	return s.Host.Available && exp > 0 && wontFit(aofDirOf(s), factor*exp)
}

// deferredTooLong is a critical finding once the guardian's own deferral, as the
// ledger dates it, has lasted MaxDeferral: the AOF keeps growing meanwhile.
func deferredTooLong(in Input, r *RewriteDeferralConfig) []Finding {
	held, ok := in.Held[SettingRewritePercent]
	if !ok || held.Remedy != RemedyRewriteDeferral || r.MaxDeferral <= 0 || in.Stopping {
		return nil
	}
	d := in.Snapshot.Time.Sub(held.Since)
	if d < r.MaxDeferral {
		return nil
	}
	info := in.Snapshot.Redis.Info
	return []Finding{{ID: IDRewriteDeferredTooLong, Severity: Critical,
		Summary: fmt.Sprintf("AOF rewrites have been deferred for %s because load stays high", round(d)),
		Cause:   fmt.Sprintf("aof_current_size %s, aof_base_size %s", HumanBytes(info.AOFCurrentSize), HumanBytes(info.AOFBaseSize)),
		Fix:     "the load never dropped below the low mark; schedule BGREWRITEAOF in a quiet window, or raise rewrite_deferral.high_ops if this load is normal"}}
}

// quietRewrite runs BGREWRITEAOF at a quiet time when the AOF has grown past the
// ratio, but only if the disk has room for the new base file.
func quietRewrite(in Input, r *RewriteDeferralConfig, sh *Shared, rate float64) []Decision {
	s := in.Snapshot
	info := s.Redis.Info
	if info.AOFBaseSize <= 0 && info.AOFCurrentSize <= 0 {
		return nil
	}
	base := info.AOFBaseSize
	grown := float64(info.AOFCurrentSize) > in.Thresholds.AOFGrowthRatio*float64(max(base, 1)) &&
		info.AOFCurrentSize >= s.Redis.Config.Int("auto-aof-rewrite-min-size", 64<<20)
	if !grown || info.ForkChildRunning() || info.AOFRewriteScheduled || info.Loading || OtherForkRunning(s) {
		return nil
	}
	if info.AOFLastBgrewriteStatus == "err" {
		// The last rewrite failed: retrying it is rewrite_retry's job, which waits
		// for the cause to clear instead of adding a failing fork of its own.
		return nil
	}
	if snapshotWontFit(s) {
		return nil
	}
	if !sh.Allowed(RemedyRewriteDeferral, r.Limits, in.Now) {
		return nil
	}
	return []Decision{{Remedy: RemedyRewriteDeferral, Action: ActBgrewriteaof, Reason: IDAOFGrowthHigh,
		Detail: fmt.Sprintf("the AOF is %s against a %s base and load is %.0f ops/s", HumanBytes(info.AOFCurrentSize), HumanBytes(base), rate)}}
}
