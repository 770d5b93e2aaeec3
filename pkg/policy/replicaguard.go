package policy

// RemedyReplicaGuard keeps a replica from crashing on a failed save. A replica (7.0+)
// with save points, stop-writes-on-bgsave-error yes and
// replica-ignore-disk-write-errors no panics ("Guru Meditation: Replica was unable
// to write command to disk") at the master's first write after a failed BGSAVE:
// about 1 ms later at 1000 writes/s, faster than any reaction to the failure. So
// it is prevented before any save fails: while the instance is a replica, the
// guardian holds stop-writes-on-bgsave-error no through the ledger. On a replica
// that setting protects nothing (a replica refuses client writes anyway) but makes
// PING fail and the master's stream fatal. On promotion the setting is given back
// within a tick, so the new master is protected again.
//
// Why this lever and not replica-ignore-disk-write-errors yes: it is the setting
// the guardian already holds and gives back on masters, it changes nothing a
// replica's clients can see, and a failed save stays visible (bgsave_failed). The
// other lever would also make a replica ignore AOF write errors and keep applying
// the master's stream with nothing reaching its disk, silently. It keeps no
// state of its own.
const RemedyReplicaGuard = "replica_guard"

var replicaGuard = Def[ReplicaGuardConfig, noState]{
	Name:     RemedyReplicaGuard,
	Settings: []Setting{stopWritesSetting},
	Defaults: func() *ReplicaGuardConfig { return &ReplicaGuardConfig{Limits: Limits{Enabled: true, MaxPerHour: 30}} },
	Decide:   decideReplicaGuard,
}

// ReplicaGuardConfig configures the replica guard: the keys every remedy has
// (Limits' Configure reads them), no others.
type ReplicaGuardConfig struct {
	Limits
}

// ReplicaCanPanic reports whether a failed save would crash this instance: a
// replica of 7.0+ (CONFIG knows replica-ignore-disk-write-errors) that does not
// ignore disk write errors, with save points and stop-writes-on-bgsave-error yes.
func ReplicaCanPanic(in Input) bool {
	cfg := in.Snapshot.Redis.Config
	ignore, known := cfg["replica-ignore-disk-write-errors"]
	return in.Snapshot.Redis.Info.Role == "slave" && known && ignore == "no" && cfg.SavePointsSet() && cfg.StopWritesOnBgsaveError()
}

func decideReplicaGuard(in Input, r *ReplicaGuardConfig, st noState, sh *Shared) ([]Decision, []Finding, noState) {
	info, cfg := in.Snapshot.Redis.Info, in.Snapshot.Redis.Config
	held, isHeld := in.Held[SettingStopWrites]
	replica := info.Role == "slave"
	if !replica {
		sh.EndEpisode(RemedyReplicaGuard, SettingStopWrites)
		sh.EndSuppression(RemedyReplicaGuard)
	}
	if isHeld && held.Remedy == RemedyReplicaGuard {
		switch {
		case in.Stopping:
			return nil, nil, st // a replica stays protected while the guardian is gone
		case replica && cfg["replica-ignore-disk-write-errors"] != "yes" && cfg.SavePointsSet():
			return nil, nil, st
		case !replica && info.RDBLastBgsaveStatus == "err":
			// Promoted while its last save failed: giving the setting back now
			// would reject writes (MISCONF) on the new master. Keep it until a
			// save succeeds.
			return nil, nil, st
		}
		detail := "promoted to master: stop-writes-on-bgsave-error protects writes again"
		if replica {
			detail = "the replica no longer crashes on a failed save (no save points, or replica-ignore-disk-write-errors yes)"
		}
		return []Decision{{Remedy: RemedyReplicaGuard, Action: ActUndo, Setting: SettingStopWrites, Value: held.Original,
			Reason: IDReplicaPanicRisk, Detail: detail}}, nil, st
	}
	if isHeld && held.Remedy == RemedyStopWrites && replica && !in.Stopping && info.RDBLastBgsaveStatus != "err" &&
		cfg["replica-ignore-disk-write-errors"] == "no" && cfg.SavePointsSet() {
		// Demoted while stop_writes held the toggle, and its save has succeeded
		// since: the hold is for the replica's sake now. Take it over, so the
		// ledger says why it is held and promotion gives it back.
		return sh.Gate(r.Limits, in.Now, Decision{Remedy: RemedyReplicaGuard, Action: ActSet, Setting: SettingStopWrites, Value: "no",
			Reason: IDReplicaPanicRisk, Detail: "demoted while the toggle was held for a failed save: kept for the replica's sake"}), nil, st
	}
	if isHeld || in.Stopping || !ReplicaCanPanic(in) || sh.IsYielded(RemedyReplicaGuard, SettingStopWrites) {
		return nil, nil, st
	}
	return sh.Gate(r.Limits, in.Now, Decision{Remedy: RemedyReplicaGuard, Action: ActSet, Setting: SettingStopWrites, Value: "no",
		Reason: IDReplicaPanicRisk,
		Detail: "this replica would crash at the master's first write after a failed save: hold stop-writes-on-bgsave-error no while it is a replica (it refuses client writes anyway)"}), nil, st
}

// replicaHoldKeep says whether stop_writes keeps its own toggle on an instance
// that is now a replica (demoted while holding): giving it back would leave the
// replica exposed until replica_guard takes the setting a tick later.
func replicaHoldKeep(in Input) bool {
	rc, ok := in.Remedies[RemedyReplicaGuard]
	return ok && rc.RateLimits().Enabled && in.Snapshot.Redis.Info.Role == "slave" &&
		in.Snapshot.Redis.Config["replica-ignore-disk-write-errors"] == "no" && in.Snapshot.Redis.Config.SavePointsSet()
}
