package policy

import (
	"fmt"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Prediction is a save failure the host shows before Redis tries: the finding
// that names it and the numbers behind it.
type Prediction struct {
	ID     string
	Detail string
}

// PredictSaveFailure returns why the next fork-based save (BGSAVE, or the fork of
// a replica sync) will fail, from host readings alone, so the predictive toggle
// can come before the first write is rejected:
//   - the snapshot does not fit in the data dir's free space (ENOSPC);
//   - the data dir cannot be written by Redis's user (EACCES);
//   - the real uid of Redis already has RLIMIT_NPROC tasks (the fork fails with
//     EAGAIN; Linux counts threads);
//   - under vm.overcommit_memory 2 the child's commit does not fit under
//     CommitLimit (the fork fails with ENOMEM).
//
// A cgroup memory.max too tight for copy-on-write is no prediction: the child
// is killed late, not at fork, and stays a finding (cgroup_memory_tight).
func PredictSaveFailure(s monitor.Snapshot) (Prediction, bool) {
	h := s.Host
	if !h.Available {
		return Prediction{}, false
	}
	if snapshotWontFit(s) {
		return Prediction{IDSnapshotWontFit, fmt.Sprintf("the next snapshot (about %s) cannot fit in %s (%s free): lift MISCONF before the save fails",
			HumanBytes(ExpectedSnapshot(s)), h.DataDir.Path, HumanBytes(int64(h.DataDir.Free)))}, true
	}
	if h.DataDir.Known && h.DataDir.Writable == monitor.No {
		return Prediction{IDDatadirNotWritable, fmt.Sprintf("Redis cannot write %s (%s): lift MISCONF before the save fails",
			h.DataDir.Path, orText(h.DataDir.WritableReason, "not writable by its user"))}, true
	}
	if nprocExhausted(h, 0) {
		return Prediction{IDForkNprocExhausted, fmt.Sprintf("uid %d has %d tasks and Redis's soft RLIMIT_NPROC is %d: the next fork fails; lift MISCONF before it does",
			h.NprocUID, h.UIDTasks, h.NprocLimit)}, true
	}
	if commitExhausted(h, 0) {
		return Prediction{IDForkCommitExhausted, fmt.Sprintf("vm.overcommit_memory 2 leaves %s to commit and a fork of Redis commits about %s: the next fork fails; lift MISCONF before it does",
			HumanBytes(h.CommitLimit-h.CommittedAS), HumanBytes(h.ProcCommit))}, true
	}
	return Prediction{}, false
}

// isPrediction reports whether id is a finding PredictSaveFailure returns: a
// toggle made for it waits the predictive dwell before it is given back.
func isPrediction(id string) bool {
	switch id {
	case IDSnapshotWontFit, IDDatadirNotWritable, IDForkNprocExhausted, IDForkCommitExhausted:
		return true
	}
	return false
}

// nprocExhausted reports whether a fork would fail on RLIMIT_NPROC with margin
// tasks to spare: it needs one more task than the uid has.
func nprocExhausted(h monitor.HostReading, margin int64) bool {
	return h.NprocLimit > 0 && h.UIDTasks >= 0 && h.UIDTasks+1+margin > h.NprocLimit
}

// commitExhausted reports whether a fork's commit (plus margin) does not fit
// under CommitLimit in strict overcommit mode.
func commitExhausted(h monitor.HostReading, margin int64) bool {
	return h.Overcommit == 2 && h.CommitLimit >= 0 && h.CommittedAS >= 0 && h.ProcCommit > 0 &&
		h.CommitLimit-h.CommittedAS < h.ProcCommit+margin
}

// predictionRoomy reports whether no prediction holds even with room to spare
// (the hysteresis of the predictive toggle): the snapshot fits with the margin,
// the data dir is writable, the uid has a tenth of its task limit (at least 2)
// left and the commit limit the margin beyond the child's commit.
func predictionRoomy(s monitor.Snapshot) bool {
	h := s.Host
	if !h.Available {
		return true
	}
	exp := ExpectedSnapshot(s)
	if exp > 0 && wontFit(h.DataDir, exp+predictiveMargin(exp)) {
		return false
	}
	if h.DataDir.Known && h.DataDir.Writable == monitor.No {
		return false
	}
	if nprocExhausted(h, max(h.NprocLimit/10, 2)) {
		return false
	}
	return !commitExhausted(h, predictiveMargin(h.ProcCommit))
}
