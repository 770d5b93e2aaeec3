package policy

import (
	"fmt"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// cgroupMemory: the memory cgroup of Redis, on v1 or v2: a limit that leaves no
// room for a fork's copy-on-write, and OOM kills in the group since the last
// reading.
func (d *diag) cgroupMemory() {
	cg := d.s.Host.Cgroup
	if !cg.Known {
		return
	}
	d.cgroupTight(cg)
	d.cgroupOOMKills(cg)
}

// cgroupFile names a cgroup's memory file as the operator finds it on disk.
func cgroupFile(cg monitor.CgroupReading, v1, v2 string) string {
	if cg.Version == 1 {
		return v1
	}
	return v2
}

// cgroupTight: the group's limit must hold what it holds now and a fork's copies.
// A fork child shares Redis's pages until either writes them, so under write load
// it can need up to Redis's RSS again; CgroupForkFactor x RSS counts Redis and
// that copy. What else the group holds counts too: its working set (other
// processes, three redis-servers in one group, and the page cache the kernel
// cannot drop cheaply), not its usage, whose inactive page cache the kernel
// reclaims before it kills. Alone in its group, Redis's working set is about its
// RSS, and the rule is the plain one: limit below factor x RSS.
func (d *diag) cgroupTight(cg monitor.CgroupReading) {
	rss := d.info.UsedMemoryRSS
	if cg.MemoryMax == 0 || rss <= 0 {
		return
	}
	held := max(int64(cg.WorkingSet), rss)
	cow := int64((d.t.CgroupForkFactor - 1) * float64(rss))
	need := held + cow
	if int64(cg.MemoryMax) >= need {
		return
	}
	limitOf := cg.Path
	if cg.LimitPath != "" {
		limitOf = cg.LimitPath
	}
	cause := fmt.Sprintf("cgroup %s (v%d): %s %s (set on %s), Redis RSS %s, %s %s",
		cg.Path, cg.Version, cgroupFile(cg, "memory.limit_in_bytes", "memory.max"), HumanBytes(int64(cg.MemoryMax)), limitOf,
		HumanBytes(rss), cgroupFile(cg, "memory.usage_in_bytes", "memory.current"), HumanBytes(int64(cg.MemoryCurrent)))
	if cg.WorkingSet > 0 {
		cause += fmt.Sprintf(", working set %s (usage less inactive page cache)", HumanBytes(int64(cg.WorkingSet)))
	}
	cause += fmt.Sprintf(": the limit leaves %s beside the %s the group holds, a fork's copy-on-write may need %s",
		HumanBytes(max(int64(cg.MemoryMax)-held, 0)), HumanBytes(held), HumanBytes(cow))
	if cg.OOMKill > 0 {
		cause += fmt.Sprintf(", %d OOM kills so far", cg.OOMKill)
	}
	d.add(IDCgroupMemoryTight, Warning, "the cgroup memory limit leaves no room for a fork's copy-on-write", cause,
		fmt.Sprintf("raise the memory limit of %s to at least %s (systemd MemoryMax=, MemoryLimit= on cgroup v1): what the group holds and room for a fork, %.0fx the RSS for Redis alone; or lower maxmemory",
			limitOf, HumanBytes(need), d.t.CgroupForkFactor))
}

// OOMKillHold is how long cgroup_oom_kill stays raised after the group's
// oom_kill counter last rose: an OOM kill is an event, seen at one tick, and a
// finding raised and cleared within a second would reach neither a person
// reading `status` nor an alert that waits a minute.
const OOMKillHold = 10 * time.Minute

// OOMKills are the OOM kills seen in one memory cgroup: Count of them since
// First, the last at Last, in the cgroup Path of version Version.
type OOMKills struct {
	Path        string
	Version     int
	First, Last time.Time
	Count       uint64
}

// TrackOOMKills adds the rise of the cgroup's oom_kill counter since prev to
// k, and forgets kills older than OOMKillHold. The counter runs from the
// group's creation, so only its rise is news; a group that changed (Redis
// moved, or its unit restarted with a fresh group) is not compared. Pure.
func TrackOOMKills(k OOMKills, prev *monitor.Snapshot, s monitor.Snapshot) OOMKills {
	cg := s.Host.Cgroup
	if !s.Host.Available || !cg.Known {
		return k
	}
	if k.Path != cg.Path || k.Version != cg.Version || !k.Last.IsZero() && s.Time.Sub(k.Last) >= OOMKillHold {
		k = OOMKills{Path: cg.Path, Version: cg.Version}
	}
	if prev == nil || !prev.Host.Available {
		return k
	}
	was := prev.Host.Cgroup
	if !was.Known || was.Path != cg.Path || was.Version != cg.Version || cg.OOMKill <= was.OOMKill {
		return k
	}
	if k.Count == 0 {
		k.First = s.Time
	}
	k.Last = s.Time
	k.Count += cg.OOMKill - was.OOMKill
	return k
}

// cgroupOOMKills: OOM kills in Redis's memory cgroup within OOMKillHold
// (History.OOMKills), or, for a one-shot check, since the reading before.
func (d *diag) cgroupOOMKills(cg monitor.CgroupReading) {
	k := d.h.OOMKills
	if k.Count == 0 {
		k = TrackOOMKills(OOMKills{}, d.h.Prev, d.s)
	}
	if k.Count == 0 || k.Path != cg.Path || k.Version != cg.Version {
		return
	}
	cause := fmt.Sprintf("cgroup %s (v%d): oom_kill of %s rose by %d",
		cg.Path, cg.Version, cgroupFile(cg, "memory.oom_control", "memory.events"), k.Count)
	if k.Last.Equal(d.s.Time) && k.First.Equal(k.Last) {
		cause += " since the last reading"
	} else {
		cause += fmt.Sprintf(" between %s and %s", k.First.Format(time.TimeOnly), k.Last.Format(time.TimeOnly))
	}
	cause += fmt.Sprintf(" (%d since the group was made)", cg.OOMKill)
	if cg.MemoryMax > 0 {
		cause += fmt.Sprintf("; limit %s", HumanBytes(int64(cg.MemoryMax)))
	}
	cause += fmt.Sprintf(", usage %s", HumanBytes(int64(cg.MemoryCurrent)))
	if cg.WorkingSet > 0 {
		cause += fmt.Sprintf(", working set %s", HumanBytes(int64(cg.WorkingSet)))
	}
	d.add(IDCgroupOOMKill, Critical, fmt.Sprintf("the OOM killer killed %d process(es) in Redis's memory cgroup in the last %s", k.Count, OOMKillHold), cause,
		oomKillFix(d.cfg[SettingOOMScoreAdj]))
}

// oomKillFix is cgroup_oom_kill's fix: room for the copy-on-write, and the
// OOM killer's bias only where Redis does not have it already.
func oomKillFix(scoreAdj string) string {
	fix := "a fork child's copy-on-write is the usual cause (a save or AOF rewrite under write load copies up to Redis's RSS): " +
		"give the group room for it (MemoryMax=, MemoryLimit= on cgroup v1, about the working set plus the RSS)"
	switch defaultNormalize(scoreAdj) {
	case "", "no":
		return fix + ", or set oom-score-adj relative so the kernel takes the save child rather than Redis (oom_shield does, unless turned off); dmesg names the process killed"
	}
	return fix + "; oom-score-adj is " + scoreAdj + ", so the kernel prefers a fork child to the server: dmesg names the process killed, and `Background saving terminated by signal 9` in the Redis log marks a child taken"
}
