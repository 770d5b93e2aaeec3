package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// RemedyOOMRelief raises maxmemory, for a while, when Redis rejects writes with
// OOM (or is about to) and cannot evict, and the host has room for more. Measured
// here: maxmemory 20mb, noeviction and a growing dataset, and every write was
// rejected while the guardian said "raise maxmemory if the host has room" and
// did nothing, although it reads the host and knows the room.
//
// When it raises: the policy cannot evict (noeviction, or volatile-* with no key
// that has a TTL) and writes were rejected with OOM since the previous reading
// (errorstat_OOM rose), or used_memory (less what maxmemory does not count) is at
// maxmemory, or its growth over the last horizon says it will be within the next
// horizon. Not when client buffers are a quarter of used_memory or more: that is
// a client that does not read (client_guard's job), and more room only gives it
// more to fill. Not on a replica (it takes its master's writes whatever its
// maxmemory) nor without a maxmemory.
//
// How: through the ledger (recorded before it is made, the original kept across
// steps, an operator's change wins, a CONFIG REWRITE during the hold caught), in
// steps of step percent of the original, one step per fresh memory reading (INFO
// memory is read at every tick when Redis has a maxmemory: a step is judged on the reading after it, and OOM rejections
// count only when read after it), never above max_raise percent of the
// original, and never into room the host does not have (reliefRoomOf): RAM (MemTotal) or the cgroup's limit, less
// everything else that runs there (read as used_memory plus what is free now:
// MemAvailable, or the limit less the group's working set), less 5% kept free,
// less the copy-on-write a fork child of this instance is expected to copy
// (ExpectedCOW, when it forks), less the maxmemory of the other instances this
// guardian process watches on the host (Snapshot.Peers: what they may still take
// up to it). Instances watched by another guardian process are not seen: only
// what they use now, which is not free. While it holds, a warning
// (oom_relief_raised) says by how much, from what, and the room; when writes are
// rejected (or about to be: then a warning) and no room is left (max_raise
// reached, or the host's room), oom_relief_no_room, critical, says which bound
// stopped it.
//
// Given back: once used_memory has stayed under give_back_below percent of the
// original for dwell, with its growth not predicted to reach that either; never
// while giving back would make Redis evict or reject. On stop, or when turned off
// by a reload, it is given back at once if used_memory is under give_back_below of
// the original, else kept (the ledger holds it, restore or the next start gives it
// back), as giving it back then would reject writes at once.
const RemedyOOMRelief = "oom_relief"

// SettingMaxmemory is the setting oom_relief raises.
const SettingMaxmemory = "maxmemory"

// Finding ids of oom_relief.
const (
	IDOOMReliefRaised = "oom_relief_raised"
	IDOOMReliefNoRoom = "oom_relief_no_room"
)

var oomRelief = Def[OOMReliefConfig, oomReliefState]{
	Name:     RemedyOOMRelief,
	Settings: []Setting{{Name: SettingMaxmemory, Normalize: normalizeMem, Valid: validMem}},
	Defaults: func() *OOMReliefConfig {
		return &OOMReliefConfig{
			Limits:        Limits{Enabled: false, MaxPerHour: 30}, // opt-in: it gives Redis memory the operator did not
			Dwell:         10 * time.Minute,
			MaxRaise:      25,
			Step:          5,
			Horizon:       30 * time.Second,
			GiveBackBelow: 80,
		}
	},
	Decide: decideOOMRelief,
}

// OOMReliefConfig configures oom_relief. The percentages are of the original
// maxmemory (the one before the guardian's first step).
type OOMReliefConfig struct {
	Limits
	// Dwell is how long used_memory must stay under GiveBackBelow before the
	// original is given back.
	Dwell time.Duration
	// MaxRaise caps the raise, Step is one step's size.
	MaxRaise float64
	Step     float64
	// Horizon is how far ahead the growth of used_memory is projected (and over
	// how long it is measured).
	Horizon time.Duration
	// GiveBackBelow is the share of the original used_memory must stay under.
	GiveBackBelow float64
}

// Configure reads remedies.oom_relief.
func (c *OOMReliefConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Duration("dwell", &c.Dwell, 0)
	p.Positive("max_raise", &c.MaxRaise)
	p.Positive("step", &c.Step)
	p.Duration("horizon", &c.Horizon, time.Second)
	p.Positive("give_back_below", &c.GiveBackBelow)
	if c.GiveBackBelow >= 100 {
		p.Problem("give_back_below", "must be under 100 (percent of the original maxmemory), is %g", c.GiveBackBelow)
	}
	if c.Step > c.MaxRaise {
		p.Problem("step", "must not be above max_raise (%g%%), is %g%%", c.MaxRaise, c.Step)
	}
}

// memSample is one reading of used_memory (less what maxmemory does not count).
type memSample struct {
	T    time.Time
	Used int64
}

type oomReliefState struct {
	RunID string
	// Samples are the readings of the last horizon, for the growth rate.
	Samples []memSample
	// RaisedAt is the time of the reading the last step was decided on: the
	// next step waits for a newer one.
	RaisedAt time.Time
	// BelowSince is since when used_memory has stayed under give_back_below of
	// the original (zero while above, or nothing is held).
	BelowSince time.Time
}

// reliefReading is what one tick knows about maxmemory and its use.
type reliefReading struct {
	used     int64   // used_memory less mem_not_counted_for_evict: what maxmemory is compared with
	cur      int64   // maxmemory now
	orig     int64   // maxmemory before the guardian's first step
	rate     float64 // growth of used, bytes/s (0 when not growing or unknown)
	rejected int64   // OOM rejections since the previous reading
}

// projected is used_memory at the horizon.
func (r reliefReading) projected(h time.Duration) int64 {
	return r.used + int64(r.rate*h.Seconds())
}

func decideOOMRelief(in Input, c *OOMReliefConfig, st oomReliefState, sh *Shared) ([]Decision, []Finding, oomReliefState) {
	info := in.Snapshot.Redis.Info
	st = st.sample(in, c.Horizon)
	held, isHeld := in.Held[SettingMaxmemory]
	mine := isHeld && held.Remedy == RemedyOOMRelief
	if isHeld && !mine {
		return nil, nil, st // another remedy's: not ours to judge
	}
	r := reliefReading{used: max(info.UsedMemory-info.MemNotCountedForEvict, 0), cur: currentMaxmemory(in), rate: st.rate()}
	r.orig = r.cur
	if mine {
		if v, err := parseMem(strings.TrimSpace(held.Original)); err == nil {
			r.orig = v
		}
	}
	if p := in.Prev; p != nil && info.HasErrorstats && p.Redis.Info.RunID == info.RunID && StatsTime(in).After(st.RaisedAt) {
		// Rejections count when read after the last step: a light read carries
		// the last full read's errorstats, from before the step.
		r.rejected = max(info.ErrorstatOOM-p.Redis.Info.ErrorstatOOM, 0)
	}
	reason, why, pressed := reliefPressure(in, c, r)
	if mine {
		return st.whileRaised(in, c, sh, held, r, reason, why, pressed)
	}
	st.BelowSince = time.Time{}
	if !pressed {
		sh.EndEpisode(RemedyOOMRelief, SettingMaxmemory)
		sh.EndSuppression(RemedyOOMRelief)
		return nil, nil, st
	}
	if !c.Enabled || in.Stopping || sh.IsYielded(RemedyOOMRelief, SettingMaxmemory) {
		return nil, nil, st
	}
	ds, fs := st.step(in, c, sh, r, reason, why)
	return ds, fs, st
}

// whileRaised decides for a maxmemory the remedy holds raised: give it back after
// the dwell (or at stop) when that is safe, step further while the pressure
// lasts, and say so.
func (st *oomReliefState) whileRaised(in Input, c *OOMReliefConfig, sh *Shared, held Held, r reliefReading,
	reason, why string, pressed bool) ([]Decision, []Finding, oomReliefState) {
	below := int64(float64(r.orig) * c.GiveBackBelow / 100)
	safe := r.used < below && r.projected(c.Horizon) < below
	if safe {
		if st.BelowSince.IsZero() {
			st.BelowSince = in.Now
		}
	} else {
		st.BelowSince = time.Time{}
	}
	undo := func(detail string) Decision {
		return Decision{Remedy: RemedyOOMRelief, Action: ActUndo, Setting: SettingMaxmemory, Value: held.Original, Reason: IDOOMReliefRaised, Detail: detail}
	}
	room := reliefRoomOf(in, r)
	f := raisedFinding(c, held, r, room, below, in.Now.Sub(st.BelowSince), safe)
	switch {
	case in.Stopping && safe:
		return []Decision{undo(fmt.Sprintf("the guardian stops: used_memory %s is under %s of the original", HumanBytes(r.used), HumanBytes(below)))}, nil, *st
	case !c.Enabled && safe:
		return []Decision{undo("oom_relief is disabled: give maxmemory back while used_memory is under " + HumanBytes(below))}, nil, *st
	case in.Stopping || !c.Enabled:
		return nil, []Finding{f}, *st // giving it back now would reject writes at once
	case safe && in.Now.Sub(st.BelowSince) >= c.Dwell:
		return []Decision{undo(fmt.Sprintf("used_memory %s has stayed under %s (%g%% of the original %s) for %s",
			HumanBytes(r.used), HumanBytes(below), c.GiveBackBelow, HumanBytes(r.orig), round(in.Now.Sub(st.BelowSince))))}, []Finding{f}, *st
	case !pressed:
		return nil, []Finding{f}, *st
	}
	ds, fs := st.step(in, c, sh, r, reason, why)
	return ds, append([]Finding{f}, fs...), *st
}

// step raises maxmemory by one step within the room, or says no room is left.
func (st *oomReliefState) step(in Input, c *OOMReliefConfig, sh *Shared, r reliefReading, reason, why string) ([]Decision, []Finding) {
	room := reliefRoomOf(in, r)
	capped := r.orig + int64(float64(r.orig)*c.MaxRaise/100)
	target := min(r.cur+max(int64(float64(r.orig)*c.Step/100), 1), capped)
	bound := fmt.Sprintf("oom_relief.max_raise (%g%% of the original %s: %s)", c.MaxRaise, HumanBytes(r.orig), HumanBytes(capped))
	if room.ceiling < target {
		target = room.ceiling
		bound = "the host's room: " + room.text
	}
	if target <= r.cur {
		// Critical while writes are rejected; a warning while only the growth
		// says they will be.
		sev, summary := Critical, fmt.Sprintf("Redis rejects writes with OOM and maxmemory %s cannot be raised further", HumanBytes(r.cur))
		if r.rejected == 0 && r.used < r.cur {
			sev, summary = Warning, fmt.Sprintf("Redis will reject writes with OOM soon and maxmemory %s cannot be raised further", HumanBytes(r.cur))
		}
		return nil, []Finding{{ID: IDOOMReliefNoRoom, Severity: sev,
			Summary: summary,
			Cause:   why + "; the raise is stopped by " + bound,
			Fix:     "reduce the dataset (delete or expire keys), pick an eviction policy if this is a cache (allkeys-lru), or give the host (or cgroup) more memory and raise maxmemory by hand"}}
	}
	t := memTime(in)
	if !st.RaisedAt.IsZero() && !t.After(st.RaisedAt) {
		return nil, nil // the last step is judged on a newer reading
	}
	st.RaisedAt = t
	d := Decision{Remedy: RemedyOOMRelief, Action: ActSet, Setting: SettingMaxmemory, Value: strconv.FormatInt(target, 10), Reason: reason,
		Detail: fmt.Sprintf("%s: raise maxmemory from %s to %s (original %s, at most %s; room: %s)",
			why, HumanBytes(r.cur), HumanBytes(target), HumanBytes(r.orig), HumanBytes(capped), room.text)}
	return sh.Gate(c.Limits, in.Now, d), nil
}

// raisedFinding is the warning that repeats while maxmemory is held raised.
func raisedFinding(c *OOMReliefConfig, held Held, r reliefReading, room reliefRoom, below int64, belowFor time.Duration, safe bool) Finding {
	back := fmt.Sprintf("it is given back once used_memory has stayed under %s (%g%% of the original) for %s", HumanBytes(below), c.GiveBackBelow, c.Dwell)
	if safe {
		back += fmt.Sprintf(" (under it for %s now)", round(belowFor))
	}
	return Finding{ID: IDOOMReliefRaised, Severity: Warning,
		Summary: fmt.Sprintf("maxmemory is held raised by %s, from %s to %s, so writes are not rejected", HumanBytes(r.cur-r.orig), HumanBytes(r.orig), HumanBytes(r.cur)),
		Cause: fmt.Sprintf("used_memory %s (growing %s/s); raised by oom_relief since %s, at most %s; room: %s",
			HumanBytes(r.used), HumanBytes(int64(r.rate)), held.Since.UTC().Format(time.RFC3339), HumanBytes(r.orig+int64(float64(r.orig)*c.MaxRaise/100)), room.text),
		Fix: back + "; the lasting fix is the operator's: reduce the dataset, expire keys, or set the maxmemory the data needs in redis.conf"}
}

// reliefPressure says whether writes are rejected with OOM, or about to be, under
// a policy that cannot evict, and memory, not a client, is the cause: the
// finding id the raise is for, and why in words.
func reliefPressure(in Input, c *OOMReliefConfig, r reliefReading) (reason, why string, ok bool) {
	info := in.Snapshot.Redis.Info
	if r.cur <= 0 || info.Role == "slave" || info.UsedMemory <= 0 {
		return "", "", false
	}
	pol := info.MaxMemoryPolicy
	if v, known := in.Snapshot.Redis.Config["maxmemory-policy"]; known && v != "" {
		pol = v
	}
	switch {
	case strings.HasPrefix(pol, "allkeys-"):
		return "", "", false
	case strings.HasPrefix(pol, "volatile-") && info.Expires > 0:
		return "", "", false
	}
	if info.HasMemoryBreakdown && info.MemClientsNormal*4 >= info.UsedMemory {
		return "", "", false // a client that does not read: client_guard's, not more room
	}
	policy := "under " + orUnknown(pol)
	if strings.HasPrefix(pol, "volatile-") {
		policy += " with no key that has a TTL"
	}
	horizonAt := r.projected(c.Horizon)
	switch {
	case r.rejected > 0:
		return IDOOMRejections, fmt.Sprintf("Redis rejected %d writes with OOM since the previous reading (used_memory %s of maxmemory %s, %s)",
			r.rejected, HumanBytes(r.used), HumanBytes(r.cur), policy), true
	case r.used >= r.cur:
		return IDMaxmemoryNearLimit, fmt.Sprintf("used_memory %s is at maxmemory %s %s: writes are rejected", HumanBytes(r.used), HumanBytes(r.cur), policy), true
	case r.rate > 0 && horizonAt >= r.cur:
		return IDMaxmemoryNearLimit, fmt.Sprintf("used_memory %s grows %s/s: it reaches maxmemory %s within %s %s, and writes would be rejected",
			HumanBytes(r.used), HumanBytes(int64(r.rate)), HumanBytes(r.cur), c.Horizon, policy), true
	}
	return "", "", false
}

// reliefRoom is the highest maxmemory the host has room for, and how it was
// found. ceiling is 0 when the host is not read: no room is known, none is taken.
type reliefRoom struct {
	ceiling int64
	text    string
}

// reliefKeepFree: a twentieth (5%) of RAM or of the cgroup's limit is never
// raised into. At the exact limit the kernel reclaims page cache on every
// allocation and a cgroup's OOM killer is one allocator hiccup away (Redis's
// memory above used_memory grows with the data).
const reliefKeepFree = 20

// reliefRoomOf is the highest maxmemory the memory Redis is charged to has room
// for: used_memory plus what is free now (MemAvailable; the cgroup's limit less
// its working set), less 5% of RAM or the limit kept free, the copy-on-write
// reserve of a fork (when the instance forks), and what the other instances of
// the host may still take (their maxmemory less what they use: what they use
// is already not free). That is RAM or the limit less everything else that runs
// there, less the others' maxmemory, less the reserves. Only what is charged
// counts: Redis's RSS includes its binary's pages, which a cgroup does not
// charge to it (measured: RSS 11-13 MiB above used_memory, the group's working
// set 3 MiB above).
func reliefRoomOf(in Input, r reliefReading) reliefRoom {
	s := in.Snapshot
	h := s.Host
	if !h.Available || h.MemTotal == 0 {
		return reliefRoom{text: "unknown (the host is not read: Redis is not local, or host_checks is off)"}
	}
	var cow int64
	if CanFork(in) {
		cow = ExpectedCOW(s)
	}
	var parts []string
	bound := func(what string, limit, free int64, freeWhat string, peers []monitor.PeerMemory) int64 {
		var unused int64
		for _, p := range peers {
			unused += max(p.MaxMemory-p.UsedMemory, 0) // no maxmemory: what it uses is all that is known
		}
		keep := limit / reliefKeepFree
		ceiling := max(r.used+free-keep-cow-unused, 0)
		text := fmt.Sprintf("%s %s: used_memory %s + %s %s, less %s kept free (5%%), %s fork reserve",
			what, HumanBytes(limit), HumanBytes(r.used), freeWhat, HumanBytes(free), HumanBytes(keep), HumanBytes(cow))
		if len(peers) > 0 {
			text += fmt.Sprintf(", %s the %d other instance(s) may still take up to their maxmemory", HumanBytes(unused), len(peers))
		}
		parts = append(parts, text+" = "+HumanBytes(ceiling))
		return ceiling
	}
	ceiling := bound("RAM", int64(h.MemTotal), int64(h.MemAvailable), "MemAvailable", s.Peers)
	if cg := h.Cgroup; cg.Known && cg.MemoryMax > 0 {
		var same []monitor.PeerMemory
		for _, p := range s.Peers {
			if p.CgroupLimit != "" && p.CgroupLimit == cg.LimitPath {
				same = append(same, p)
			}
		}
		free := max(int64(cg.MemoryMax)-int64(cg.WorkingSet), 0)
		ceiling = min(ceiling, bound("cgroup "+orUnknown(cg.LimitPath)+" limit", int64(cg.MemoryMax), free, "free (limit less working set)", same))
	}
	return reliefRoom{ceiling: ceiling, text: fmt.Sprintf("maxmemory up to %s (%s)", HumanBytes(ceiling), strings.Join(parts, "; "))}
}

// memTime is when the snapshot's used_memory was read: every tick while memory
// is watched (monitor.MemoryWatched: with a maxmemory), else at the last
// full read.
func memTime(in Input) time.Time {
	if t := in.Snapshot.Redis.MemoryTime; !t.IsZero() && !t.After(in.Now) && t.After(StatsTime(in)) {
		return t
	}
	return StatsTime(in)
}

// currentMaxmemory is maxmemory now: the held value, else CONFIG GET's (fresh
// after every change), else INFO's.
func currentMaxmemory(in Input) int64 {
	if h, ok := in.Held[SettingMaxmemory]; ok {
		if v, err := parseMem(strings.TrimSpace(h.Value)); err == nil {
			return v
		}
	}
	if v, ok := in.Snapshot.Redis.Config[SettingMaxmemory]; ok {
		if n, err := parseMem(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	return in.Snapshot.Redis.Info.MaxMemory
}

// sample adds this reading of used_memory (at the time INFO memory was read)
// and keeps the last horizon's; a restarted Redis starts again.
func (st oomReliefState) sample(in Input, horizon time.Duration) oomReliefState {
	info := in.Snapshot.Redis.Info
	if st.RunID != info.RunID {
		st = oomReliefState{RunID: info.RunID}
	}
	t := memTime(in)
	used := max(info.UsedMemory-info.MemNotCountedForEvict, 0)
	if n := len(st.Samples); n > 0 && !t.After(st.Samples[n-1].T) {
		return st
	}
	samples := append(append([]memSample(nil), st.Samples...), memSample{T: t, Used: used})
	cut := 0
	for cut < len(samples)-2 && t.Sub(samples[cut+1].T) >= horizon {
		cut++
	}
	st.Samples = samples[cut:]
	return st
}

// rate is the growth of used_memory over the samples, 0 when it does not grow.
func (st oomReliefState) rate() float64 {
	if len(st.Samples) < 2 {
		return 0
	}
	a, b := st.Samples[0], st.Samples[len(st.Samples)-1]
	dt := b.T.Sub(a.T).Seconds()
	if dt <= 0 || b.Used <= a.Used {
		return 0
	}
	return float64(b.Used-a.Used) / dt
}

// normalizeMem reads a memory size in bytes (CONFIG GET answers bytes; a
// config file or an operator may say 20mb).
func normalizeMem(v string) string {
	if n, err := parseMem(defaultNormalize(v)); err == nil {
		return strconv.FormatInt(n, 10)
	}
	return defaultNormalize(v)
}

// validMem accepts a non-negative memory size (0 is no limit: an original the
// guardian may give back, though it never raises from it).
func validMem(v string) error {
	n, err := parseMem(defaultNormalize(v))
	if err != nil || n < 0 {
		return errors.New("not a non-negative memory size")
	}
	return nil
}
