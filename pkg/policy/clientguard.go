package policy

import (
	"fmt"
	"strings"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// RemedyClientGuard disconnects a client whose output buffer fills Redis's
// memory: a MONITOR left open that does not read (an engineer's forgotten
// `redis-cli monitor` piped into a pager). Client output buffers count toward
// maxmemory, and client-output-buffer-limit normal is "0 0 0" (no limit) by
// default, with MONITOR in the normal class: measured, such a MONITOR grew to
// 150 MB of maxmemory 200mb under write load and Redis rejected 8402 of 12500
// writes with OOM in 25 s. Raising maxmemory only gives it more to fill.
//
// It acts only while the pressure is real: writes rejected with OOM since the
// previous reading (errorstat_OOM rose), or Redis's memory at
// maxmemory_used_percent of a ceiling (maxmemory, or the room its cgroup or the
// host leaves it: memLimits, the same reading as maxmemory_near_limit), and
// client buffers a large share of it (monitor.ClientBuffersLarge, the condition
// under which the snapshot carries CLIENT LIST's biggest buffers). It kills with
// CLIENT KILL ID (ActClientKill) each listed MONITOR whose output buffer is at
// least monitor_min_omem; on by default, because a MONITOR is diagnostics: its
// owner loses a stream of commands they were not reading anyway.
//
// Other normal clients, pub/sub subscribers included, are opt-in
// (normal_min_omem, 0 = never): a subscriber that falls behind loses every
// message in its buffer when it is dropped (pub/sub does not redeliver), and a
// client in a transaction or a blocking call loses its work; which of those an
// application can afford is the operator's call. Never killed, whatever the
// configuration: a replica (flag S: a new full sync would cost the master a
// fork and more memory), the master link (M), a client marked no-evict (e, the
// operator's CLIENT NO-EVICT on), and the guardian's own connection (CLIENT LIST
// leaves it out by id; the executor checks again, and CLIENT KILL's SKIPME
// default spares the caller).
//
// It sees the clients when the guardian does: CLIENT LIST runs at a read of
// INFO memory (every tick when Redis has a maxmemory or client buffers are
// large, monitor.MemoryWatched; else at a full read, info_refresh)
// while client buffers are above 32 MiB and a quarter of used_memory, and is
// kept for up to a minute (monitor.ClientListEvery), or 5 s once the buffers
// grew by another 32 MiB. A runaway MONITOR that fills memory is far past both
// (measured: 52-62 MiB of 64 MiB at its first listing); a client listed under
// the size is killed at the next listing, if it has grown past it. Client buffers under a quarter of
// used_memory are not the cause of the pressure, and nothing is killed then.
//
// The executor checks every rule again right before the kill, on CLIENT LIST ID
// (6.2+; the whole list before): still the same client (address and command),
// still not S, M or e, its buffer still at least the size. Client ids are not
// reused while Redis runs; a restart counts them from 1 again, which the
// address and command check catches. It changes no setting, so nothing goes in
// the ledger: each kill is a remedy_applied event with the client's details.
const RemedyClientGuard = "client_guard"

var clientGuard = Def[ClientGuardConfig, clientGuardState]{
	Name: RemedyClientGuard,
	Defaults: func() *ClientGuardConfig {
		return &ClientGuardConfig{
			Limits:         Limits{Enabled: true, MaxPerHour: 30},
			MonitorMinOmem: 32 << 20,
		}
	},
	Decide:  decideClientGuard,
	Observe: observeClientGuard,
}

// ClientGuardConfig configures client_guard.
type ClientGuardConfig struct {
	Limits
	// MonitorMinOmem is the output buffer a MONITOR must hold to be killed under
	// pressure; 0 never kills a MONITOR.
	MonitorMinOmem int64
	// NormalMinOmem is the same for every other client of the normal and pub/sub
	// classes; 0 (the default) never kills one.
	NormalMinOmem int64
}

// Configure reads remedies.client_guard.
func (c *ClientGuardConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Size("monitor_min_omem", &c.MonitorMinOmem)
	p.Size("normal_min_omem", &c.NormalMinOmem)
}

// clientGuardState remembers the clients already asked to be killed (by id,
// with the run they belong to): the snapshot's CLIENT LIST is kept until a full
// read finds the buffers small, so a killed client stays listed for a few ticks,
// and each would otherwise be one more action against max_per_hour.
type clientGuardState struct {
	runID  string
	killed []int64
}

// ClientKillable says why a client must never be killed by client_guard ("" when
// it may be). The executor asks it again on the live CLIENT LIST entry.
func ClientKillable(c monitor.Client) string {
	switch {
	case strings.Contains(c.Flags, "S"):
		return "it is a replica (flag S)"
	case strings.Contains(c.Flags, "M"):
		return "it is the link to the master (flag M)"
	case strings.Contains(c.Flags, "e"):
		return "it is marked no-evict (flag e)"
	}
	return ""
}

// clientMinOmem is the output buffer a client must hold to be killed, 0 for never.
func (c *ClientGuardConfig) clientMinOmem(cl monitor.Client) int64 {
	if cl.Monitor() {
		return c.MonitorMinOmem
	}
	return c.NormalMinOmem
}

// clientPressure says whether memory pressure is real now, how, and the finding
// id it is.
func clientPressure(in Input) (why, id string, ok bool) {
	s := in.Snapshot
	info := s.Redis.Info
	if !monitor.ClientBuffersLarge(info) {
		return "", "", false
	}
	if p := in.Prev; p != nil && info.HasErrorstats && p.Redis.Info.RunID == info.RunID && info.ErrorstatOOM > p.Redis.Info.ErrorstatOOM {
		return fmt.Sprintf("Redis rejected %d writes with OOM since the previous reading; client buffers hold %s of used_memory %s",
			info.ErrorstatOOM-p.Redis.Info.ErrorstatOOM, HumanBytes(info.MemClientsNormal), HumanBytes(info.UsedMemory)), IDOOMRejections, true
	}
	d := diag{s: s, t: in.Thresholds, info: &s.Redis.Info, cfg: s.Redis.Config}
	for _, l := range d.memLimits() {
		if l.percent() >= in.Thresholds.MaxmemoryUsedPercent {
			return fmt.Sprintf("Redis's %s is %.0f%% of %s (%s); client buffers hold %s",
				l.usedKey, l.percent(), l.what, HumanBytes(l.limit), HumanBytes(info.MemClientsNormal)), IDMaxmemoryNearLimit, true
		}
	}
	return "", "", false
}

func decideClientGuard(in Input, r *ClientGuardConfig, st clientGuardState, sh *Shared) ([]Decision, []Finding, clientGuardState) {
	s := in.Snapshot
	if st.runID != s.Redis.Info.RunID {
		st = clientGuardState{runID: s.Redis.Info.RunID}
	}
	// Forget the ids no longer listed: they are gone, and ids are not reused.
	var kept []int64
	for _, id := range st.killed {
		for _, c := range s.Redis.Clients {
			if c.ID == id {
				kept = append(kept, id)
				break
			}
		}
	}
	st.killed = kept
	if in.Stopping || !r.Enabled {
		return nil, nil, st
	}
	why, reason, ok := clientPressure(in)
	if !ok {
		sh.EndSuppression(RemedyClientGuard)
		return nil, nil, st
	}
	var want []Decision
	for _, c := range s.Redis.Clients {
		minOmem := r.clientMinOmem(c)
		if minOmem <= 0 || c.Omem < minOmem || ClientKillable(c) != "" || containsID(st.killed, c.ID) {
			continue
		}
		want = append(want, Decision{Remedy: RemedyClientGuard, Action: ActClientKill, Client: c, MinOmem: minOmem,
			Reason: reason, Detail: fmt.Sprintf("%s; %s holds %s of output buffer (at least %s)",
				why, clientKind(c), HumanBytes(c.Omem), HumanBytes(minOmem))})
	}
	if len(want) == 0 {
		return nil, nil, st
	}
	// A limit that stops the first stops them all, reported once per episode.
	if ds := sh.Gate(r.Limits, in.Now, want[0]); len(ds) == 0 || ds[0].Action != ActClientKill {
		return ds, nil, st
	}
	// The hourly cap counts kills; a cooldown allows one a tick. Observe records
	// each kill that was carried out.
	budget := sh.Budget(RemedyClientGuard, r.Limits, in.Now)
	if r.Cooldown > 0 {
		budget = min(budget, 1)
	}
	ds := want[:min(budget, len(want))]
	for _, d := range ds {
		st.killed = append(st.killed, d.Client.ID)
	}
	return ds, nil, st
}

// observeClientGuard lets a failed kill be tried again (after the backoff).
func observeClientGuard(st clientGuardState, o Outcome) clientGuardState {
	if o.OK || o.Decision.Action != ActClientKill {
		return st
	}
	var kept []int64
	for _, id := range st.killed {
		if id != o.Decision.Client.ID {
			kept = append(kept, id)
		}
	}
	st.killed = kept
	return st
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// clientKind names a client for a message: "the MONITOR id=7 addr=..." .
func clientKind(c monitor.Client) string {
	kind := "the client"
	switch {
	case c.Monitor():
		kind = "the MONITOR"
	case strings.Contains(c.Flags, "P"):
		kind = "the subscriber"
	}
	return kind + " " + describeClient(c)
}
