package policy

import (
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

func TestNormalizeReplicaLimit(t *testing.T) {
	t.Parallel()
	get := "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{get, "replica 256mb 64mb 60", true},
		{get, "slave 268435456 67108864 60", true},
		{get, "replica 512mb 64mb 60", false},
		{"replica 1gb 256mb 60", "normal 0 0 0 slave 1073741824 268435456 60 pubsub 0 0 0", true},
		{"replica 1k 1kb 0", "replica 1000 1024 0", true},
	} {
		if got := SameValue(SettingOutputBufferLimit, tc.a, tc.b); got != tc.same {
			t.Errorf("SameValue(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// TestDecideReplicaBuffer: full syncs counted over the window make a loop; the
// finding names the numbers; the opt-in remedy raises the limit and gives it back
// after a stable dwell.
func TestDecideReplicaBuffer(t *testing.T) {
	t.Parallel()
	base := decideInput()
	base.Snapshot.Redis.Config[SettingOutputBufferLimit] = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
	base.Snapshot.Log.Last = map[monitor.LogKind]monitor.LogEvent{monitor.LogOutputBufferClosed: {Kind: monitor.LogOutputBufferClosed, Cause: "replica", Time: now,
		Line: "1:M 01 Jan 2026 00:00:00.000 # Client id=5 addr=127.0.0.1:1 flags=S omem=300000000 tot-mem=1 closed for overcoming of output buffer limits."}}
	step := func(in Input, st State, after time.Duration, syncFull int64) ([]Decision, []Finding, State) {
		t.Helper()
		in = at(in, now.Add(after))
		in.Snapshot.Redis.Info.SyncFull = syncFull
		res, st2 := Evaluate(in, st)
		var fs []Finding
		for _, f := range res.Findings {
			if f.ID == IDReplicaResyncLoop {
				fs = append(fs, f)
			}
		}
		return only(res.Decisions, RemedyReplicaBuffer), fs, st2
	}

	// Off by default: the finding, no change.
	st := State{}
	var ds []Decision
	var fs []Finding
	for i := range 4 {
		ds, fs, st = step(base, st, time.Duration(i)*time.Minute, int64(10+i))
	}
	if len(ds) != 0 || len(fs) != 1 {
		t.Fatalf("remedy off: decisions %+v, findings %+v; want the finding only", ds, fs)
	}

	on := base
	on.Remedies = base.Remedies.Clone()
	ConfigOf[*ReplicaBufferConfig](on.Remedies).Enabled = true
	st = State{}
	for i := range 4 {
		ds, _, st = step(on, st, time.Duration(i)*time.Minute, int64(10+i))
	}
	want := "replica 1073741824 268435456 60" // 4 x 256 MiB, above 2 x omem
	if len(ds) != 1 || ds[0].Action != ActSet || ds[0].Value != want {
		t.Fatalf("remedy on: %+v, want one set to %q", ds, want)
	}
	// Held; no more full syncs: given back only after the dwell.
	on.Held = map[string]Held{SettingOutputBufferLimit: {Setting: SettingOutputBufferLimit, Original: base.Snapshot.Redis.Config[SettingOutputBufferLimit], Value: want, Remedy: RemedyReplicaBuffer}}
	on.Snapshot.Redis.Config[SettingOutputBufferLimit] = "normal 0 0 0 slave 1073741824 268435456 60 pubsub 33554432 8388608 60"
	on.Snapshot.Redis.Info.Replicas = 1 // still in its full sync
	ds, _, st = step(on, st, 4*time.Minute, 14)
	ds2, _, st := step(on, st, 20*time.Minute, 14)
	if len(ds)+len(ds2) != 0 {
		t.Fatalf("held while the replica syncs: %+v %+v, want nothing", ds, ds2)
	}
	on.Snapshot.Redis.Info.ReplicasOnline = 1 // caught up, streaming
	ds, _, st = step(on, st, 21*time.Minute, 14)
	ds2, _, st = step(on, st, 25*time.Minute, 14)
	if len(ds)+len(ds2) != 0 {
		t.Fatalf("held, online for 4m: %+v %+v, want nothing yet", ds, ds2)
	}
	ds, _, _ = step(on, st, 31*time.Minute, 14)
	if len(ds) != 1 || ds[0].Action != ActUndo {
		t.Errorf("held, online for 10m: %+v, want the undo", ds)
	}
}
