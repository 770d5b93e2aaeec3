package policy

import (
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// TestOOMKillHeld: an OOM kill is seen at one tick (the counter rose), and
// cgroup_oom_kill stays raised for OOMKillHold afterwards, counting every kill
// in that time, then clears. On the code before, it was raised at the tick that
// saw the rise and gone at the next, a second later.
func TestOOMKillHeld(t *testing.T) {
	t.Parallel()
	snap := func(at time.Duration, kills uint64, scoreAdj string) monitor.Snapshot {
		s := healthy()
		s.Time = now.Add(at)
		s.Host.Cgroup = monitor.CgroupReading{Known: true, Version: 1, Path: "/redis", MemoryCurrent: uint64(200 * mib), WorkingSet: uint64(190 * mib), OOMKill: kills}
		s.Redis.Config[SettingOOMScoreAdj] = scoreAdj
		return s
	}
	var st State
	var prev *monitor.Snapshot
	tick := func(at time.Duration, kills uint64, scoreAdj string) *Finding {
		s := snap(at, kills, scoreAdj)
		in := Input{Snapshot: s, Prev: prev, Now: s.Time, Remedies: DefaultRemedies(), Thresholds: DefaultThresholds(), Held: map[string]Held{}}
		res, next := Evaluate(in, st)
		st, prev = next, &s
		for _, f := range res.Findings {
			if f.ID == IDCgroupOOMKill {
				return &f
			}
		}
		return nil
	}
	if f := tick(0, 1, "no"); f != nil {
		t.Fatalf("first reading (a kill from before): %+v, want none", f)
	}
	f := tick(time.Second, 2, "no")
	if f == nil {
		t.Fatal("the tick that saw the rise raised no cgroup_oom_kill")
	}
	contains(t, "cause", f.Cause, "rose by 1 since the last reading")
	contains(t, "fix", f.Fix, "set oom-score-adj relative")
	f = tick(2*time.Second, 2, "relative")
	if f == nil {
		t.Fatal("cgroup_oom_kill cleared at the next tick, a second after the kill")
	}
	contains(t, "fix", f.Fix, "oom-score-adj is relative", "signal 9")
	if f := tick(5*time.Minute, 4, "relative"); f == nil || f.Summary != "the OOM killer killed 3 process(es) in Redis's memory cgroup in the last 10m0s" {
		t.Fatalf("a second rise within the hold: %+v, want 3 kills counted", f)
	}
	if f := tick(5*time.Minute+OOMKillHold-time.Second, 4, "relative"); f == nil {
		t.Fatal("cleared before OOMKillHold after the last kill")
	}
	if f := tick(5*time.Minute+OOMKillHold, 4, "relative"); f != nil {
		t.Fatalf("still raised OOMKillHold after the last kill: %+v", f)
	}
}
