package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// RemedyReplicaBuffer stops a replica's full-resync loop. A master streams a full sync
// (the RDB, then the writes made meanwhile) through the replica's output buffer;
// when that outgrows client-output-buffer-limit replica, the master drops the
// replica ("scheduled to be closed ASAP for overcoming of output buffer limits"),
// which asks for another full sync, and so on: sync_full grows, the replica never
// catches up, and every attempt forks a save on the master. The finding
// replica_resync_loop says so with the numbers; the opt-in remedy (off by default:
// it lets the master spend more memory per replica) raises the replica class of
// client-output-buffer-limit through the ledger, and gives it back once the
// replicas have been stable for a dwell.
const RemedyReplicaBuffer = "replica_buffer"

// SettingOutputBufferLimit is the setting replica_buffer raises (its replica class).
const SettingOutputBufferLimit = "client-output-buffer-limit"

var replicaBuffer = Def[ReplicaBufferConfig, replicaBufferState]{
	Name:     RemedyReplicaBuffer,
	Settings: []Setting{{Name: SettingOutputBufferLimit, Normalize: normalizeReplicaLimit, Valid: validOutputBufferLimit}},
	Defaults: func() *ReplicaBufferConfig {
		return &ReplicaBufferConfig{
			Limits:       Limits{Enabled: false, MaxPerHour: 6}, // opt-in: it lets the master spend more memory per replica
			Window:       10 * time.Minute,
			MinFullSyncs: 3,
			MaxLimit:     2 << 30,
			Dwell:        10 * time.Minute,
		}
	},
	Decide: decideReplicaBuffer,
}

// ReplicaBufferConfig configures the resync-loop remedy.
type ReplicaBufferConfig struct {
	Limits
	// Window is how far back full syncs are counted; MinFullSyncs of them in it
	// (with the buffer limit set) make a loop.
	Window       time.Duration
	MinFullSyncs int
	// MaxLimit caps the hard limit the remedy sets.
	MaxLimit int64
	// Dwell is how long every replica must have been online (streaming, no full
	// sync) before the limit is given back.
	Dwell time.Duration
}

type replicaBufferState struct {
	Samples []fullSyncSample
	// StableSince is when every replica was last seen online with no full sync
	// since (zero while one syncs or none is connected).
	StableSince time.Time
}

type fullSyncSample struct {
	T        time.Time
	SyncFull int64
}

// Configure reads remedies.replica_buffer.
func (c *ReplicaBufferConfig) Configure(p Params) {
	c.Limits.Configure(p)
	p.Duration("window", &c.Window, time.Second)
	p.Int("min_full_syncs", &c.MinFullSyncs, 2)
	p.Size("max_limit", &c.MaxLimit)
	p.Duration("dwell", &c.Dwell, 0)
}

func decideReplicaBuffer(in Input, r *ReplicaBufferConfig, st replicaBufferState, sh *Shared) ([]Decision, []Finding, replicaBufferState) {
	info, cfg := in.Snapshot.Redis.Info, in.Snapshot.Redis.Config
	if n := len(st.Samples); n == 0 || StatsTime(in).After(st.Samples[n-1].T) {
		st.Samples = append(append([]fullSyncSample(nil), st.Samples...), fullSyncSample{T: StatsTime(in), SyncFull: info.SyncFull})
	}
	if n := len(st.Samples); n >= 2 && st.Samples[n-1].SyncFull < st.Samples[n-2].SyncFull {
		st.Samples = st.Samples[n-1:] // a restart: the counter started again
	}
	grew := false
	if n := len(st.Samples); n >= 2 && st.Samples[n-1].SyncFull > st.Samples[n-2].SyncFull {
		grew = true
	}
	// A full sync counts in sync_full when it starts; stable means every replica
	// streams (state=online) and none started a full sync since.
	if grew || info.Replicas == 0 || info.ReplicasOnline < info.Replicas {
		st.StableSince = time.Time{}
	} else if st.StableSince.IsZero() {
		st.StableSince = in.Now
	}
	cut := 0
	for cut < len(st.Samples)-1 && in.Now.Sub(st.Samples[cut+1].T) >= r.Window {
		cut++
	}
	st.Samples = st.Samples[cut:]
	syncs := st.Samples[len(st.Samples)-1].SyncFull - st.Samples[0].SyncFull

	held, isHeld := in.Held[SettingOutputBufferLimit]
	mine := isHeld && held.Remedy == RemedyReplicaBuffer
	cur, known := replicaLimit(cfg[SettingOutputBufferLimit])
	loop := info.Role == "master" && known && cur.hard > 0 && syncs >= int64(r.MinFullSyncs)
	if mine && in.Stopping {
		// Raised to let a sync finish: give it back unless syncs are still looping.
		if loop {
			return nil, nil, st
		}
		return []Decision{r.undo(held, "the guardian is stopping")}, nil, st
	}
	if !loop {
		if !mine {
			sh.EndEpisode(RemedyReplicaBuffer, SettingOutputBufferLimit)
			return nil, nil, st
		}
		if !st.StableSince.IsZero() && in.Now.Sub(st.StableSince) >= r.Dwell {
			return []Decision{r.undo(held, fmt.Sprintf("every replica has streamed for %s without a full sync: they are stable", round(in.Now.Sub(st.StableSince))))}, nil, st
		}
		return nil, nil, st // raised: waiting for the replicas to catch up and stay up
	}
	omem := lastReplicaOmem(in)
	need := max(4*cur.hard, 2*omem)
	need = min(need, r.MaxLimit)
	f := Finding{ID: IDReplicaResyncLoop, Severity: Critical,
		Summary: "a replica keeps full-syncing: the master drops it for its output buffer before each sync can finish",
		Cause: fmt.Sprintf("sync_full rose by %d in %s; client-output-buffer-limit replica is %s hard, %s soft for %ds%s",
			syncs, round(in.Now.Sub(st.Samples[0].T)), HumanBytes(cur.hard), HumanBytes(cur.soft), cur.secs, omemText(omem)),
		Fix: fmt.Sprintf("raise it so a full sync fits, e.g. CONFIG SET client-output-buffer-limit \"replica %d %d %d\" (redis-guardian's replica_buffer remedy does this when enabled), or slow the writes during the sync",
			need, need/4, max(cur.secs, 60))}
	if !r.Enabled || in.Stopping || sh.IsYielded(RemedyReplicaBuffer, SettingOutputBufferLimit) || (isHeld && !mine) {
		return nil, []Finding{f}, st
	}
	if need <= cur.hard {
		return nil, []Finding{f}, st // at max_limit already: the finding says what is left to do
	}
	value := fmt.Sprintf("replica %d %d %d", need, max(cur.soft, need/4), max(cur.secs, 60))
	d := Decision{Remedy: RemedyReplicaBuffer, Action: ActSet, Setting: SettingOutputBufferLimit, Value: value, Reason: IDReplicaResyncLoop,
		Detail: fmt.Sprintf("raise the replica output buffer limit from %s to %s so a full sync can finish", HumanBytes(cur.hard), HumanBytes(need))}
	// A raise restarts the count: the next full syncs tell whether it was enough.
	st.Samples = st.Samples[len(st.Samples)-1:]
	return sh.Gate(r.Limits, in.Now, d), []Finding{f}, st
}

func (r *ReplicaBufferConfig) undo(held Held, why string) Decision {
	return Decision{Remedy: RemedyReplicaBuffer, Action: ActUndo, Setting: SettingOutputBufferLimit, Value: held.Original,
		Reason: IDReplicaResyncLoop, Detail: why}
}

func omemText(omem int64) string {
	if omem <= 0 {
		return ""
	}
	return fmt.Sprintf("; the last replica dropped held %s (redis log)", HumanBytes(omem))
}

var omemRE = regexp.MustCompile(`\bomem=(\d+)`)

// lastReplicaOmem is the output buffer a replica held when the master last
// dropped it (the log line's omem=), 0 when unknown.
func lastReplicaOmem(in Input) int64 {
	ev, ok := in.Snapshot.Log.Last[monitor.LogOutputBufferClosed]
	if !ok || (ev.Cause != "replica" && ev.Cause != "slave") {
		return 0
	}
	m := omemRE.FindStringSubmatch(ev.Line)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// classLimit is one class of client-output-buffer-limit.
type classLimit struct {
	hard, soft int64
	secs       int
}

// replicaLimit reads the replica class (Redis also calls it slave) of a
// client-output-buffer-limit value, CONFIG GET's form (all classes, bytes) or
// CONFIG SET's (one class, sizes like 256mb).
func replicaLimit(v string) (classLimit, bool) {
	f := strings.Fields(strings.ToLower(v))
	for i := 0; i+3 < len(f); i += 4 {
		if f[i] != "replica" && f[i] != "slave" {
			continue
		}
		hard, err1 := parseMem(f[i+1])
		soft, err2 := parseMem(f[i+2])
		secs, err3 := strconv.Atoi(f[i+3])
		if err1 != nil || err2 != nil || err3 != nil {
			return classLimit{}, false
		}
		return classLimit{hard: hard, soft: soft, secs: secs}, true
	}
	return classLimit{}, false
}

// validOutputBufferLimit accepts a client-output-buffer-limit value: groups of a
// client class, a hard and a soft size and seconds (what CONFIG GET answers, and
// the one replica class the remedy sets).
func validOutputBufferLimit(v string) error {
	f := strings.Fields(strings.ToLower(v))
	if len(f) == 0 || len(f)%4 != 0 {
		return errors.New("not groups of class, hard limit, soft limit and seconds")
	}
	for i := 0; i < len(f); i += 4 {
		switch f[i] {
		case "normal", "replica", "slave", "pubsub":
		default:
			return fmt.Errorf("unknown client class %s", Quote(f[i]))
		}
		_, err1 := parseMem(f[i+1])
		_, err2 := parseMem(f[i+2])
		secs, err3 := strconv.Atoi(f[i+3])
		if err1 != nil || err2 != nil || err3 != nil || secs < 0 {
			return fmt.Errorf("class %s: the limits are not sizes and seconds", f[i])
		}
	}
	return nil
}

// normalizeReplicaLimit compares client-output-buffer-limit values by their
// replica class only, in bytes: CONFIG GET answers with every class, in bytes, and
// names the class slave; the guardian sets only the replica class.
func normalizeReplicaLimit(v string) string {
	if l, ok := replicaLimit(v); ok {
		return fmt.Sprintf("replica %d %d %d", l.hard, l.soft, l.secs)
	}
	return defaultNormalize(v)
}

// parseMem reads a Redis memory size: bytes, or k/kb/m/mb/g/gb (k = 1000,
// kb = 1024, as Redis's memtoull).
func parseMem(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1000}, {"m", 1000 * 1000}, {"g", 1000 * 1000 * 1000}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory size %q: %w", s, err)
	}
	return n * mult, nil
}
