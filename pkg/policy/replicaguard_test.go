package policy

import (
	"testing"
	"time"
)

func asReplica(in *Input) {
	in.Snapshot.Redis.Info.Role = "slave"
	in.Snapshot.Redis.Config["replica-ignore-disk-write-errors"] = "no"
}

func holdStopWritesBy(in *Input, remedy string) {
	in.Held = map[string]Held{SettingStopWrites: {Setting: SettingStopWrites, Original: "yes", Value: "no",
		Remedy: remedy, Reason: IDReplicaPanicRisk, Since: now.Add(-time.Minute)}}
	in.Snapshot.Redis.Config[SettingStopWrites] = "no"
}

func TestDecideReplicaGuard(t *testing.T) {
	t.Parallel()
	set := []Decision{{Remedy: RemedyReplicaGuard, Action: ActSet, Setting: SettingStopWrites, Value: "no", Reason: IDReplicaPanicRisk}}
	undo := []Decision{{Remedy: RemedyReplicaGuard, Action: ActUndo, Setting: SettingStopWrites, Value: "yes", Reason: IDReplicaPanicRisk}}
	runDecideCases(t, RemedyReplicaGuard, []decideCase{
		{name: "master"},
		{name: "exposed replica", setup: func(in *Input, _ *State) { asReplica(in) }, want: set},
		{name: "replica before 7.0 (no such setting)", setup: func(in *Input, _ *State) {
			asReplica(in)
			delete(in.Snapshot.Redis.Config, "replica-ignore-disk-write-errors")
		}},
		{name: "replica ignoring disk write errors", setup: func(in *Input, _ *State) {
			asReplica(in)
			in.Snapshot.Redis.Config["replica-ignore-disk-write-errors"] = "yes"
		}},
		{name: "replica without save points", setup: func(in *Input, _ *State) {
			asReplica(in)
			in.Snapshot.Redis.Config["save"] = ""
		}},
		{name: "replica, disabled", setup: func(in *Input, _ *State) {
			asReplica(in)
			ConfigOf[*ReplicaGuardConfig](in.Remedies).Enabled = false
		}},
		{name: "replica, yielded to an operator", setup: func(in *Input, st *State) {
			asReplica(in)
			st.Shared.Yielded = map[string]time.Time{Yield{Remedy: RemedyReplicaGuard, Setting: SettingStopWrites}.key(): now}
		}},
		{name: "held on a replica: kept", setup: func(in *Input, _ *State) {
			asReplica(in)
			holdStopWritesBy(in, RemedyReplicaGuard)
		}},
		{name: "held, promoted: given back", setup: func(in *Input, _ *State) { holdStopWritesBy(in, RemedyReplicaGuard) }, want: undo},
		{name: "held, promoted while its save fails: kept", setup: func(in *Input, _ *State) {
			holdStopWritesBy(in, RemedyReplicaGuard)
			misconf(in)
		}},
		{name: "held while stopping: kept", setup: func(in *Input, _ *State) {
			holdStopWritesBy(in, RemedyReplicaGuard)
			in.Stopping = true
		}},
		{name: "held by stop_writes on a replica, save ok: taken over", setup: func(in *Input, _ *State) {
			asReplica(in)
			holdStopWritesBy(in, RemedyStopWrites)
		}, want: set},
		{name: "held by stop_writes on a replica, save still failing", setup: func(in *Input, _ *State) {
			asReplica(in)
			holdStopWritesBy(in, RemedyStopWrites)
			misconf(in)
		}},
	})
}

// TestStopWritesAndReplicaGuard: stop_writes leaves replica_guard's hold alone,
// and keeps its own toggle when its Redis was demoted while holding.
func TestStopWritesAndReplicaGuard(t *testing.T) {
	t.Parallel()
	in := decideInput()
	holdStopWritesBy(&in, RemedyReplicaGuard) // the save succeeds: stop_writes would undo its own
	if ds, _ := Decide(in, State{}); len(only(ds, RemedyStopWrites)) != 0 {
		t.Errorf("stop_writes acted on replica_guard's hold: %+v", ds)
	}
	demoted := decideInput()
	asReplica(&demoted)
	holdStopWritesBy(&demoted, RemedyStopWrites)
	if ds, _ := Decide(demoted, State{}); len(only(ds, RemedyStopWrites)) != 0 {
		t.Errorf("demoted while holding: %+v, want stop_writes to keep the toggle", ds)
	}
}
