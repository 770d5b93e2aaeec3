package policy

import (
	"fmt"
	"sort"
)

// Severity ranks a finding the way monitoring plugins do.
type Severity string

// Severities. There is no "ok" finding: a healthy instance has none.
const (
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Finding is one diagnosed problem: what is wrong, why, and what fixes it.
type Finding struct {
	// ID is stable: alerts, journal queries and runbooks key on it.
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	// Cause is the evidence: the Redis log line, the host reading, the INFO field.
	Cause string `json:"cause"`
	// Fix is what a senior SRE would do about it (readable text; a remedy is
	// something the guardian does).
	Fix string `json:"fix"`
}

// Finding ids. They are part of the product's interface: never rename one.
const (
	IDRedisUnreachable       = "redis_unreachable"
	IDRedisReplyInvalid      = "redis_reply_invalid"
	IDAuthFailed             = "auth_failed"
	IDCommandUnavailable     = "command_unavailable"
	IDMisconfRDB             = "misconf_rdb"
	IDMisconfAOF             = "misconf_aof"
	IDBgsaveFailed           = "bgsave_failed"
	IDAOFWriteFailed         = "aof_write_failed"
	IDAOFRewriteFailed       = "aof_rewrite_failed"
	IDDiskSpaceLow           = "disk_space_low"
	IDSnapshotWontFit        = "snapshot_wont_fit"
	IDDatadirNotWritable     = "datadir_not_writable"
	IDStaleTempFiles         = "stale_temp_files"
	IDForkHeadroomLow        = "fork_headroom_low"
	IDOvercommitNotEnabled   = "overcommit_not_enabled"
	IDTHPEnabled             = "thp_enabled"
	IDCgroupMemoryTight      = "cgroup_memory_tight"
	IDCgroupOOMKill          = "cgroup_oom_kill"
	IDMaxmemoryUnset         = "maxmemory_unset"
	IDMaxmemoryNearLimit     = "maxmemory_near_limit"
	IDMaxmemoryExceedsHost   = "maxmemory_exceeds_host"
	IDOOMRejections          = "oom_rejections"
	IDEvictionPolicyMismatch = "eviction_policy_mismatch"
	IDFragmentationHigh      = "fragmentation_high"
	IDSwapping               = "swapping"
	IDAOFGrowthHigh          = "aof_growth_high"
	IDAOFFsyncSlow           = "aof_fsync_slow"
	IDForkSlow               = "fork_slow"
	IDReplicationLinkDown    = "replication_link_down"
	IDReplicaBufferOverflow  = "replica_buffer_overflow"
	IDHostChecksUnavailable  = "host_checks_unavailable"
	IDLogFileNotRegular      = "log_file_not_regular"
	IDRewriteDeferredTooLong = "rewrite_deferred_too_long"
	IDLedgerUnreadable       = "ledger_unreadable"
	IDLedgerStranded         = "ledger_stranded"
	IDHeldValueInConfigFile  = "held_value_in_config_file"
	IDConfigFileUnprotected  = "config_file_unprotected"
	IDAOFRewriteStorm        = "aof_rewrite_storm"
	IDAOFRewriteWontFit      = "aof_rewrite_wont_fit"
	IDReplicaPanicRisk       = "replica_panic_risk"
	IDReplicaResyncLoop      = "replica_resync_loop"
	IDForkNprocExhausted     = "fork_nproc_exhausted"
	IDForkCommitExhausted    = "fork_commit_exhausted"
	IDStateDirInsecure       = "state_dir_insecure"
	IDOOMShieldUnavailable   = "oom_shield_unavailable"
	IDOOMScoreAdjIneffective = "oom_score_adj_ineffective"
)

// RejectsWrites reports whether the findings say Redis is refusing writes now.
func RejectsWrites(fs []Finding) bool {
	for _, f := range fs {
		if f.ID == IDMisconfRDB || f.ID == IDMisconfAOF {
			return true
		}
	}
	return false
}

// Worst returns the highest severity among findings, "" when there are none.
func Worst(fs []Finding) Severity {
	var w Severity
	for _, f := range fs {
		if f.Severity == Critical {
			return Critical
		}
		if f.Severity == Warning {
			w = Warning
		}
	}
	return w
}

// sortFindings orders critical before warning, then by id, so output is stable.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Severity != fs[j].Severity {
			return fs[i].Severity == Critical
		}
		return fs[i].ID < fs[j].ID
	})
}

// HumanBytes formats a byte count with binary units, e.g. "1.5 GiB".
func HumanBytes(n int64) string {
	if n < 0 && n != -1<<63 { // -MinInt64 overflows to itself: print it as plain bytes
		return "-" + HumanBytes(-n)
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// KnownIDs lists every finding id, for validating configuration that names them.
var KnownIDs = []string{
	IDRedisUnreachable, IDRedisReplyInvalid, IDAuthFailed, IDCommandUnavailable, IDMisconfRDB, IDMisconfAOF,
	IDBgsaveFailed, IDAOFWriteFailed, IDAOFRewriteFailed, IDDiskSpaceLow, IDSnapshotWontFit,
	IDDatadirNotWritable, IDStaleTempFiles, IDForkHeadroomLow, IDOvercommitNotEnabled,
	IDTHPEnabled, IDCgroupMemoryTight, IDCgroupOOMKill, IDMaxmemoryUnset, IDMaxmemoryNearLimit,
	IDMaxmemoryExceedsHost, IDOOMRejections, IDEvictionPolicyMismatch, IDFragmentationHigh,
	IDSwapping, IDAOFGrowthHigh, IDAOFFsyncSlow, IDForkSlow, IDReplicationLinkDown,
	IDReplicaBufferOverflow, IDHostChecksUnavailable, IDLogFileNotRegular, IDRewriteDeferredTooLong,
	IDLedgerUnreadable, IDLedgerStranded, IDHeldValueInConfigFile, IDConfigFileUnprotected,
	IDAOFRewriteStorm, IDAOFRewriteWontFit, IDReplicaPanicRisk, IDReplicaResyncLoop,
	IDForkNprocExhausted, IDForkCommitExhausted, IDStateDirInsecure,
	IDForkDeferred, IDForkWontFit, IDForkBudgetMismatch,
	IDOOMShieldUnavailable, IDOOMScoreAdjIneffective,
	IDOOMReliefRaised, IDOOMReliefNoRoom,
}

// StateDirInsecure is the finding of a state dir or ledger that users other than
// the guardian's can write: they could forge the record `restore` acts on (entries
// no remedy makes are refused, but a forged original of a held setting is not
// distinguishable from a real one).
func StateDirInsecure(err error) Finding {
	return Finding{ID: IDStateDirInsecure, Severity: Warning,
		Summary: "the state dir or ledger can be written by other users",
		Cause:   err.Error(),
		Fix:     "chmod go-w the state dir and its ledger files (the package's state dir is redis:redis, mode 0750)"}
}

// LedgerUnreadable is the finding of an instance whose ledger cannot be used: the
// guardian watches it but changes nothing, and never rewrites or deletes the file.
// stateDir says the cause is a state dir it cannot write, not the file.
func LedgerUnreadable(err error, stateDir bool) Finding {
	f := Finding{ID: IDLedgerUnreadable, Severity: Critical,
		Summary: "the ledger of held changes cannot be read: remedies are off for this instance",
		Cause:   err.Error(),
		Fix:     "check each setting the file names against the live Redis (CONFIG GET) and restore what is still changed; then move the file aside and reload the guardian. A newer guardian's ledger: upgrade, or restore with that version"}
	if stateDir {
		f.Summary = "the ledger of held changes cannot be written: remedies are off for this instance"
		f.Fix = "give state_dir to the guardian's user (the package's is redis, mode 0750) or free its file system, then reload the guardian"
	}
	return f
}
