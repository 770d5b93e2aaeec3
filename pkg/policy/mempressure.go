package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// What holds Redis's memory: the shares of INFO memory a cause and a fix follow.
const (
	partDataset   = "dataset"
	partClients   = "clients"
	partReplicas  = "replicas"
	partBacklog   = "backlog"
	partAOF       = "aof"
	partScripts   = "scripts"
	partOverhead  = "overhead"
	partAllocator = "allocator"
)

// memPart is one share of Redis's memory.
type memPart struct {
	key   string
	label string // as the operator finds it in INFO memory
	bytes int64
}

// memParts splits used_memory by what holds it, biggest first: used_memory =
// dataset + overhead, and the overhead holds the client buffers, the replicas'
// buffers, the backlog, the AOF buffer and the script caches; what is left of it
// is start-up memory and the keyspace's own tables. With rss, RSS above
// used_memory is a share too (what the kernel sees: a host or cgroup limit counts
// it). ok is false when the server reports no breakdown (before 4.0).
func memParts(in *monitor.Info, rss bool) (parts []memPart, ok bool) {
	if !in.HasMemoryBreakdown {
		return nil, false
	}
	named := in.MemClientsNormal + in.MemClientsSlaves + in.MemReplicationBacklog + in.MemAOFBuffer + in.UsedMemoryScripts
	parts = []memPart{
		{partDataset, "dataset (used_memory_dataset)", in.UsedMemoryDataset},
		{partClients, "client buffers (mem_clients_normal)", in.MemClientsNormal},
		{partReplicas, "replica buffers (mem_clients_slaves)", in.MemClientsSlaves},
		{partBacklog, "replication backlog (mem_replication_backlog)", in.MemReplicationBacklog},
		{partAOF, "AOF buffer (mem_aof_buffer)", in.MemAOFBuffer},
		{partScripts, "scripts (used_memory_scripts)", in.UsedMemoryScripts},
		{partOverhead, "other overhead (start-up, keyspace tables)", max(in.UsedMemoryOverhead-named, 0)},
	}
	if rss {
		parts = append(parts, memPart{partAllocator, "RSS above used_memory (allocator)", max(in.UsedMemoryRSS-in.UsedMemory, 0)})
	}
	parts = slices.DeleteFunc(parts, func(p memPart) bool { return p.bytes <= 0 })
	slices.SortStableFunc(parts, func(a, b memPart) int {
		switch {
		case a.bytes > b.bytes:
			return -1
		case a.bytes < b.bytes:
			return 1
		}
		return 0
	})
	return parts, len(parts) > 0
}

// describeParts prints the shares of total, e.g. "client buffers
// (mem_clients_normal) 150.0 MiB (75%), dataset ...".
func describeParts(parts []memPart, total int64) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", p.label, HumanBytes(p.bytes))
		if total > 0 {
			fmt.Fprintf(&b, " (%.0f%%)", 100*float64(p.bytes)/float64(total))
		}
	}
	return b.String()
}

// memLimit is a ceiling Redis's memory meets: maxmemory (used_memory less what
// it does not count), or the room its cgroup or host leaves it (RSS: what the
// kernel sees).
type memLimit struct {
	what    string // "maxmemory", "the room its cgroup leaves it", "the room the host leaves it"
	usedKey string // "used_memory" or "RSS"
	used    int64
	limit   int64
	detail  string
	rss     bool
}

func (l memLimit) percent() float64 { return 100 * float64(l.used) / float64(l.limit) }

// memLimits are the ceilings known for this snapshot. The cgroup's room is its
// limit less what the rest of the group holds (its working set beyond Redis's
// RSS); the host's is Redis's RSS plus MemAvailable.
func (d *diag) memLimits() []memLimit {
	in, h := d.info, d.s.Host
	var out []memLimit
	if in.MaxMemory > 0 {
		used := max(in.UsedMemory-in.MemNotCountedForEvict, 0)
		detail := fmt.Sprintf("used_memory %s of maxmemory %s, policy %s", HumanBytes(in.UsedMemory), HumanBytes(in.MaxMemory), orUnknown(in.MaxMemoryPolicy))
		if in.MemNotCountedForEvict > 0 {
			detail += fmt.Sprintf(" (%s of it, replica and AOF buffers, is not counted: mem_not_counted_for_evict)", HumanBytes(in.MemNotCountedForEvict))
		}
		out = append(out, memLimit{what: "maxmemory", usedKey: "used_memory", used: used, limit: in.MaxMemory, detail: detail})
	}
	rss := in.UsedMemoryRSS
	if rss <= 0 || !h.Available {
		return out
	}
	if cg := h.Cgroup; cg.Known && cg.MemoryMax > 0 {
		others := max(int64(cg.WorkingSet)-rss, 0)
		room := int64(cg.MemoryMax) - others
		if room > 0 {
			detail := fmt.Sprintf("RSS %s; cgroup %s limit %s", HumanBytes(rss), cg.Path, HumanBytes(int64(cg.MemoryMax)))
			if others > 0 {
				detail += fmt.Sprintf(", of which the rest of the group holds %s (working set less Redis's RSS)", HumanBytes(others))
			}
			out = append(out, memLimit{what: "the room its cgroup leaves it", usedKey: "RSS", used: rss, limit: room, detail: detail, rss: true})
		}
	}
	if h.MemTotal > 0 && h.MemAvailable > 0 {
		room := rss + int64(h.MemAvailable)
		out = append(out, memLimit{what: "the room the host leaves it", usedKey: "RSS", used: rss, limit: room,
			detail: fmt.Sprintf("RSS %s, MemAvailable %s of %s", HumanBytes(rss), HumanBytes(int64(h.MemAvailable)), HumanBytes(int64(h.MemTotal))), rss: true})
	}
	return out
}

// fullPercent is where a noeviction Redis counts as full (critical): a write
// bigger than what is left is rejected already, and used_memory that hovers
// about maxmemory (99.96% one tick, 100.01% the next) must not flip the
// finding between warning and critical at every tick (seen: every 10 s under
// a runaway MONITOR).
const fullPercent = 99

// memPressure is maxmemory_near_limit: Redis's memory near the tightest of its
// ceilings, with what holds it; the cause and the fix follow the biggest share,
// so a runaway client is not answered with "raise maxmemory".
func (d *diag) memPressure() {
	var worst memLimit
	for _, l := range d.memLimits() {
		if worst.limit == 0 || l.percent() > worst.percent() {
			worst = l
		}
	}
	if worst.limit == 0 {
		return
	}
	pct := worst.percent()
	if pct < d.t.MaxmemoryUsedPercent {
		return
	}
	in := d.info
	sev := Warning
	summary := fmt.Sprintf("Redis uses %.0f%% of maxmemory", pct)
	if worst.what != "maxmemory" {
		summary = fmt.Sprintf("Redis's RSS is %.0f%% of %s: the OOM killer comes next", pct, worst.what)
	} else if pct >= fullPercent && in.MaxMemoryPolicy == "noeviction" {
		sev = Critical
	}
	cause, fix := d.memCause(worst, false)
	d.add(IDMaxmemoryNearLimit, sev, summary, cause, fix)
}

// memCause is the evidence and the advice for memory at a ceiling: the limit,
// the shares, and the fix for the biggest one. oom says writes are being
// rejected (the advice for the dataset then names eviction policies).
func (d *diag) memCause(l memLimit, oom bool) (cause, fix string) {
	in := d.info
	cause = l.detail
	parts, ok := memParts(in, l.rss)
	if !ok {
		fix = "raise maxmemory if the host has room, or reduce the dataset; with noeviction, writes fail with OOM at 100%"
		if oom {
			fix = "raise maxmemory, pick an eviction policy that can evict, or reduce the dataset"
		}
		if l.what != "maxmemory" {
			fix = fmt.Sprintf("set maxmemory below %s (with an eviction policy if this is a cache), or give Redis more room", l.what)
		}
		return cause + " (this server reports no breakdown of used_memory)", fix
	}
	total := in.UsedMemory
	if l.rss {
		total = in.UsedMemoryRSS
	}
	cause += "; it holds " + describeParts(parts, total)
	switch parts[0].key {
	case partClients:
		c, f := d.clientsCause(l)
		return cause + "; " + c, f
	case partReplicas:
		fix = "replicas are being fed faster than they read, or a full sync is running: check INFO replication (state, lag) on the master and the replicas' links; client-output-buffer-limit replica bounds the buffers (too low a limit makes a full sync loop). Raising maxmemory does not help: replica buffers are not counted by it"
	case partBacklog:
		fix = fmt.Sprintf("lower repl-backlog-size (CONFIG SET repl-backlog-size) to what a replica's reconnect needs; the backlog is %s", HumanBytes(in.MemReplicationBacklog))
	case partAOF:
		fix = "the AOF buffer waits for the disk: see aof_fsync_slow, move the AOF to a faster or less busy disk"
	case partScripts:
		fix = "SCRIPT FLUSH drops the cached scripts; clients that EVAL a script built per call (values inlined) fill the cache: make them pass values as arguments (EVALSHA)"
	case partOverhead:
		fix = "the keyspace's own tables (many small keys, a rehash under way) hold it: pack small keys into hashes, or raise maxmemory if the host has room"
	case partAllocator:
		fix = "RSS is above what Redis allocated (see fragmentation_high): MEMORY PURGE returns the allocator's empty pages; a failover and restart returns the rest"
	default: // the dataset
		switch {
		case l.what != "maxmemory":
			fix = fmt.Sprintf("set maxmemory below %s (%s), with an eviction policy if this is a cache, or reduce the dataset, or give Redis more room", l.what, HumanBytes(l.limit))
		case oom:
			fix = d.raiseFix() + ", pick an eviction policy that can evict (allkeys-lru for a cache), or reduce the dataset"
		default:
			fix = d.raiseFix() + ", or reduce the dataset; with noeviction, writes fail with OOM at 100%"
		}
	}
	return cause, fix
}

// raiseFix says whether maxmemory can be raised, and how far: the guardian
// reads the host, so "if the host has room" is a number (oom_relief's room:
// RAM or the cgroup's limit less what else runs there, the other instances'
// maxmemory and a fork's copy-on-write).
func (d *diag) raiseFix() string {
	in := Input{Snapshot: d.s, Now: d.s.Time}
	room := reliefRoomOf(in, reliefReading{used: max(d.info.UsedMemory-d.info.MemNotCountedForEvict, 0)})
	switch {
	case room.ceiling == 0:
		return "raise maxmemory if the host has room"
	case room.ceiling <= d.info.MaxMemory:
		return fmt.Sprintf("the host has no room to raise maxmemory (%s)", room.text)
	}
	return fmt.Sprintf("raise maxmemory by up to %s (%s; remedies.oom_relief raises it by itself within that room while writes are rejected)",
		HumanBytes(room.ceiling-d.info.MaxMemory), room.text)
}

// clientsCause names the clients whose buffers fill memory (the snapshot's
// CLIENT LIST) and the fix: disconnect them and cap their class. Raising
// maxmemory would only give a client that does not read more to fill.
func (d *diag) clientsCause(l memLimit) (cause, fix string) {
	r := d.s.Redis
	var b strings.Builder
	b.WriteString("client output buffers: a client that does not read its replies (a MONITOR left open, a stalled subscriber) grows them without bound")
	if v, ok := d.cfg.Get("client-output-buffer-limit"); ok {
		if normal := bufferLimitOf(v, "normal"); normal != "" {
			fmt.Fprintf(&b, " (client-output-buffer-limit normal %s", normal)
			if normal == "0 0 0" {
				b.WriteString(": no limit, the default")
			}
			b.WriteString(")")
		}
	}
	if in := d.info; in.MaxMemoryPolicy != "" && in.MaxMemoryPolicy != "noeviction" && l.what == "maxmemory" {
		fmt.Fprintf(&b, "; under %s Redis evicts keys to make room for them", in.MaxMemoryPolicy)
	}
	classes := map[string]bool{}
	var kill []string
	switch {
	case len(r.Clients) > 0:
		fmt.Fprintf(&b, "; biggest output buffers (CLIENT LIST %s ago): ", round(max(d.s.Time.Sub(r.ClientsTime), 0)))
		for i, c := range r.Clients {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(describeClient(c))
			classes[clientClass(c)] = true
			kill = append(kill, fmt.Sprint(c.ID))
		}
	case r.ClientsErr != nil:
		fmt.Fprintf(&b, "; the clients could not be named: %v (the guardian's user needs +client|list +client|id)", r.ClientsErr)
	case !monitor.ClientBuffersLarge(*d.info):
		b.WriteString("; CLIENT LIST, sorted by omem, names them")
	default:
		b.WriteString("; the guardian names them with CLIENT LIST at its next full INFO read")
	}
	if len(classes) == 0 {
		classes["normal"] = true
	}
	var limits []string
	for _, class := range []string{"normal", "pubsub", "replica"} {
		if classes[class] {
			limits = append(limits, class+" "+suggestedBufferLimit(d.info.MaxMemory, class))
		}
	}
	fix = "disconnect the client(s) holding the buffers"
	if len(kill) > 0 {
		fix += " (CLIENT KILL ID " + strings.Join(kill, ", CLIENT KILL ID ") + ")"
	} else {
		fix += " (CLIENT KILL ID <id>, from CLIENT LIST's largest omem)"
	}
	fix += fmt.Sprintf(", and find out why they do not read (a forgotten MONITOR, redis-cli monitor piped into a pager); then cap their class so Redis drops such a client instead of rejecting writes: CONFIG SET client-output-buffer-limit %q (and in redis.conf)", strings.Join(limits, " "))
	fix += ", or maxmemory-clients (7.0+) to evict the biggest clients first. Do not raise maxmemory or trim the dataset: the buffers grow for as long as the client does not read"
	return b.String(), fix
}

// describeClient prints a CLIENT LIST entry the way an operator finds it again.
func describeClient(c monitor.Client) string {
	s := fmt.Sprintf("id=%d addr=%s", c.ID, c.Addr)
	if c.Name != "" {
		s += " name=" + c.Name
	}
	return s + fmt.Sprintf(" cmd=%s flags=%s omem=%s age=%s", c.Cmd, c.Flags, HumanBytes(c.Omem), c.Age)
}

// clientClass is the client-output-buffer-limit class of a client: replicas (S)
// and subscribers (P) have their own; MONITOR and every other client are normal.
func clientClass(c monitor.Client) string {
	switch {
	case strings.Contains(c.Flags, "S"):
		return "replica"
	case strings.Contains(c.Flags, "P"):
		return "pubsub"
	}
	return "normal"
}

// bufferLimitOf returns one class's "hard soft seconds" from the value of
// client-output-buffer-limit ("normal 0 0 0 slave 268435456 67108864 60 pubsub
// ..."), "" when absent.
func bufferLimitOf(v, class string) string {
	f := strings.Fields(v)
	for i := 0; i+3 < len(f); i += 4 {
		c := f[i]
		if c == "slave" {
			c = "replica"
		}
		if c == class {
			return strings.Join(f[i+1:i+4], " ")
		}
	}
	return ""
}

// suggestedBufferLimit is a limit for a class that leaves maxmemory to the data:
// a hard limit of a quarter of maxmemory (at least 16 MiB, at most 256 MiB), a
// soft limit of a quarter of that for 60 s. Replicas keep Redis's default, which
// a full sync needs.
func suggestedBufferLimit(maxmemory int64, class string) string {
	if class == "replica" {
		return "256mb 64mb 60"
	}
	hard := int64(256)
	if maxmemory > 0 {
		hard = min(max(maxmemory>>20/4, 16), 256)
	}
	return fmt.Sprintf("%dmb %dmb 60", hard, max(hard/4, 1))
}

// oomRejections is oom_rejections: writes rejected with OOM since the previous
// reading, with what holds the memory. errorstat_OOM counts from Redis's start,
// so it is news only as a rise: a one-shot check reads it twice.
func (d *diag) oomRejections() {
	n, since := d.oomDelta()
	if n <= 0 {
		return
	}
	in := d.info
	summary := fmt.Sprintf("Redis rejected %d commands with OOM in the last %s", n, round(since))
	l := memLimit{what: "maxmemory", usedKey: "used_memory", used: in.UsedMemory, limit: in.MaxMemory,
		detail: fmt.Sprintf("used_memory %s, maxmemory %s, policy %s", HumanBytes(in.UsedMemory), HumanBytes(in.MaxMemory), orUnknown(in.MaxMemoryPolicy))}
	cause, fix := d.memCause(l, true)
	cause = fmt.Sprintf("errorstat_OOM rose by %d (%d since Redis started, uptime %s); %s", n, in.ErrorstatOOM, time.Duration(in.UptimeSeconds)*time.Second, cause)
	d.add(IDOOMRejections, Warning, summary, cause, fix)
}

// oomDelta is the number of OOM rejections since the previous reading and the
// time it covers. Without a previous reading there is no rise to see: the
// counter alone is history since Redis started, not a problem now. A restarted
// Redis (another run_id) counts from zero.
func (d *diag) oomDelta() (int64, time.Duration) {
	p := d.h.Prev
	if p == nil || !d.info.HasErrorstats {
		return 0, 0
	}
	was := p.Redis.Info.ErrorstatOOM
	if p.Redis.Info.RunID != d.info.RunID {
		was = 0
	}
	return d.info.ErrorstatOOM - was, d.s.Time.Sub(p.Time)
}
