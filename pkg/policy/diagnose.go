package policy

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// History is what diagnosis needs from earlier ticks: counters only mean something
// as deltas.
type History struct {
	// Prev is the previous snapshot whose Redis reading succeeded, nil on the first.
	Prev *monitor.Snapshot
	// OneShot says Prev is a reading a moment earlier by a one-shot check, taken
	// only to see counters rise: log lines still count from recentWindow back,
	// as without Prev.
	OneShot bool
	// OOMKills are the OOM kills seen in Redis's memory cgroup over the last
	// ticks (TrackOOMKills); zero: only Prev's reading is compared.
	OOMKills OOMKills
}

// recentWindow is how far back a log line counts when there is no earlier tick to
// compare with (a one-shot check reads the log's tail).
const recentWindow = 10 * time.Minute

// Diagnose turns one snapshot into findings, sorted critical first. It is pure.
func Diagnose(s monitor.Snapshot, h History, t Thresholds, ignore map[string]bool) []Finding {
	d := diag{s: s, h: h, t: t, info: &s.Redis.Info, cfg: s.Redis.Config}
	d.run()
	out := d.out[:0]
	for _, f := range d.out {
		if !ignore[f.ID] {
			out = append(out, f)
		}
	}
	sortFindings(out)
	return out
}

type diag struct {
	s    monitor.Snapshot
	h    History
	t    Thresholds
	info *monitor.Info
	cfg  monitor.RedisConfig
	out  []Finding
}

func (d *diag) add(id string, sev Severity, summary, cause, fix string) {
	d.out = append(d.out, Finding{ID: id, Severity: sev, Summary: summary, Cause: cause, Fix: fix})
}

func (d *diag) run() {
	if d.s.Redis.Err != nil {
		d.redisError()
		return
	}
	if d.s.Redis.ConfigErr != nil {
		d.configError()
	}
	d.logFile()
	d.persistence()
	d.aof()
	d.host()
	d.memory()
	d.replication()
}

func (d *diag) redisError() {
	r := d.s.Redis
	cause := r.Err.Error()
	switch r.ErrKind {
	case monitor.ErrAuth:
		d.add(IDAuthFailed, Critical, "authentication to Redis failed", cause,
			"check username and password_file against the Redis ACL (ACL LIST / requirepass); the guardian's user needs +info +config|get +config|set +bgsave +bgrewriteaof +ping")
	case monitor.ErrCommandUnavailable:
		d.add(IDCommandUnavailable, Critical, "Redis refuses INFO to the guardian", cause,
			"grant the guardian's ACL user +info (and +config|get +config|set +bgsave +bgrewriteaof), or undo rename-command for INFO")
	case monitor.ErrReplyInvalid:
		d.add(IDRedisReplyInvalid, Critical, "what answers at Redis's address is not a sane Redis: its reply was refused unread", cause, replyInvalidFix)
	default:
		d.add(IDRedisUnreachable, Critical, "Redis does not answer", cause,
			"check that redis-server runs (systemctl status redis-server), listens on this address, and is not stuck loading or swapping")
	}
}

// replyInvalidFix is the advice for a reply refused by the bounds (see
// monitor.MaxBulkLen and the rest).
const replyInvalidFix = "check what listens on the address (ss -ltnp, or the unix socket's owner): another process may hold the port while redis-server restarts; " +
	"use TLS (rediss://) when the path to Redis is not trusted. The guardian drops the connection and reads again at the next tick"

func (d *diag) configError() {
	r := d.s.Redis
	cause := r.ConfigErr.Error()
	if r.ConfigErrKind == monitor.ErrReplyInvalid {
		d.add(IDRedisReplyInvalid, Critical, "Redis's reply to CONFIG GET was refused: settings are unknown and remedies cannot run", cause, replyInvalidFix)
		return
	}
	sum := "CONFIG GET failed: settings are unknown and remedies cannot run"
	rem := "if CONFIG was renamed (rename-command), set the instance's config_command to the new name; if an ACL user lacks rights, grant +config|get +config|set"
	if r.ConfigErrKind != monitor.ErrCommandUnavailable {
		sum = "CONFIG GET failed: settings are unknown"
		rem = "check the Redis log; the guardian retries at the next refresh"
	}
	d.add(IDCommandUnavailable, Warning, sum, cause, rem)
}

// savePoints and stopWrites fall back to Redis's defaults when CONFIG is unknown,
// because the defaults are what makes a failed save reject writes.
func (d *diag) savePoints() bool {
	if !d.cfg.Known() {
		return true
	}
	return d.cfg.SavePointsSet()
}

func (d *diag) persistence() {
	in := d.info
	if in.RDBLastBgsaveStatus != "err" {
		return
	}
	cause, remedy := d.rdbCause()
	changes := fmt.Sprintf("%d changes since the last successful save", in.RDBChangesSinceLastSave)
	if in.RDBLastSaveTime > 0 {
		changes += fmt.Sprintf(" (%s ago)", round(d.s.Time.Sub(time.Unix(in.RDBLastSaveTime, 0))))
	}
	if d.cfg.StopWritesOnBgsaveError() && d.savePoints() {
		d.add(IDMisconfRDB, Critical,
			"writes are rejected (MISCONF): the last RDB save failed and stop-writes-on-bgsave-error is yes",
			cause+"; "+changes,
			"`CONFIG SET stop-writes-on-bgsave-error no` restores writes at once (redis-guardian run does this and sets it back after a successful save); then "+remedy)
		return
	}
	d.add(IDBgsaveFailed, Critical, "RDB snapshots are failing: recent writes are not on disk",
		cause+"; "+changes, remedy)
}

// rdbCause explains a failed save from the freshest evidence: the Redis log first
// (it has the errno text), then host readings.
func (d *diag) rdbCause() (cause, remedy string) {
	var parts []string
	remedy = "fix the cause, then run BGSAVE (redis-guardian retries it) and check rdb_last_bgsave_status:ok"
	since := time.Unix(d.info.RDBLastSaveTime, 0).Add(-time.Second)
	if ev, ok := d.newestLog(since, monitor.LogForkFailed, monitor.LogRDBWriteError, monitor.LogRDBOpenFailed, monitor.LogBgsaveSignal); ok {
		parts = append(parts, describeLog(ev))
		remedy = remedyForLog(ev, d.dataDir())
	} else if ev, ok := d.newestLog(since, monitor.LogBgsaveError); ok {
		parts = append(parts, describeLog(ev))
	}
	hr := d.s.Host
	if hr.Available {
		if hr.DataDir.Writable == monitor.No {
			parts = append(parts, "dir not writable: "+hr.DataDir.WritableReason)
			if len(parts) == 1 {
				remedy = fmt.Sprintf("give the redis user write access to %s (chown redis:redis, mode 0750), then BGSAVE", hr.DataDir.Path)
			}
		}
		if wontFit(hr.DataDir, d.expectedSnapshot()) {
			parts = append(parts, fmt.Sprintf("dir has %s free, the snapshot needs about %s", HumanBytes(int64(hr.DataDir.Free)), HumanBytes(d.expectedSnapshot())))
			if len(parts) == 1 {
				remedy = fmt.Sprintf("free space on the filesystem of %s (stale temp-*.rdb files, old backups, logs), then BGSAVE", hr.DataDir.Path)
			}
		}
		if hr.Cgroup.Known && d.h.Prev != nil && hr.Cgroup.OOMKill > d.h.Prev.Host.Cgroup.OOMKill {
			parts = append(parts, fmt.Sprintf("cgroup %s recorded %d OOM kills", hr.Cgroup.Path, hr.Cgroup.OOMKill))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "rdb_last_bgsave_status:err; no log line or host reading explains it (the Redis log shows the reason)")
	}
	return strings.Join(parts, "; "), remedy
}

func describeLog(ev monitor.LogEvent) string {
	switch ev.Kind {
	case monitor.LogForkFailed:
		return "fork: " + ev.Cause + " (redis log)"
	case monitor.LogRDBWriteError:
		return "write error: " + ev.Cause + " (redis log)"
	case monitor.LogRDBOpenFailed:
		return "cannot open the temp RDB file: " + ev.Cause + " (redis log)"
	case monitor.LogBgsaveSignal:
		return "the save child was killed by " + ev.Cause + " (redis log)"
	case monitor.LogAOFWriteError:
		return "AOF write error: " + ev.Cause + " (redis log)"
	}
	if ev.Cause != "" {
		return ev.Cause + " (redis log)"
	}
	return strings.TrimSpace(ev.Line) + " (redis log)"
}

func remedyForLog(ev monitor.LogEvent, dir string) string {
	c := strings.ToLower(ev.Cause)
	switch {
	case strings.Contains(c, "resource temporarily unavailable"):
		return "fork hit a process limit: raise LimitNPROC of the Redis unit (or ulimit -u of the redis user), then BGSAVE"
	case strings.Contains(c, "cannot allocate memory"):
		return "fork could not reserve memory: set vm.overcommit_memory=1 (/etc/sysctl.d/) and make sure RAM and swap cover the dataset, then BGSAVE"
	case strings.Contains(c, "no space left"), strings.Contains(c, "quota"):
		return fmt.Sprintf("free space on the filesystem of %s (stale temp-*.rdb files, old backups, logs) or grow it, then BGSAVE", dir)
	case strings.Contains(c, "permission denied"), strings.Contains(c, "read-only"):
		return fmt.Sprintf("give the redis user write access to %s (chown redis:redis, mode 0750; check a read-only mount), then BGSAVE", dir)
	case strings.HasPrefix(c, "signal 9"):
		return "the child was SIGKILLed, usually by the OOM killer or a cgroup memory limit: check dmesg and memory.events, leave room for copy-on-write, then BGSAVE"
	case strings.HasPrefix(c, "signal"):
		return "the save child was killed by a signal: find out who sent it (dmesg, audit), then BGSAVE"
	case strings.Contains(c, "input/output error"):
		return fmt.Sprintf("the disk under %s reports I/O errors: check dmesg and the device before anything else", dir)
	}
	return "fix the cause named in the Redis log, then BGSAVE"
}

func (d *diag) dataDir() string {
	if d.s.Host.DataDir.Path != "" {
		return d.s.Host.DataDir.Path
	}
	if v, ok := d.cfg.Get("dir"); ok {
		return v
	}
	return "the data dir"
}

// expectedSnapshot estimates the bytes the next RDB needs: the current file's size
// when there is one (the temp file is written beside it), else used memory, which
// over-estimates a compressed RDB and so errs on the safe side.
func (d *diag) expectedSnapshot() int64 {
	if d.s.Host.RDBFileSize > 0 {
		return d.s.Host.RDBFileSize
	}
	return d.info.UsedMemory
}

// ExpectedSnapshot is exported for remedies that need the same estimate.
func ExpectedSnapshot(s monitor.Snapshot) int64 {
	d := diag{s: s, info: &s.Redis.Info}
	return d.expectedSnapshot()
}

// newestLog returns the newest event of the given kinds at or after since.
func (d *diag) newestLog(since time.Time, kinds ...monitor.LogKind) (monitor.LogEvent, bool) {
	var best monitor.LogEvent
	found := false
	for _, k := range kinds {
		ev, ok := d.s.Log.Last[k]
		if !ok || ev.Time.Before(since) {
			continue
		}
		if !found || ev.Time.After(best.Time) {
			best, found = ev, true
		}
	}
	return best, found
}

// logSincePrev is the cut-off for "new" log lines: the previous tick, or a fixed
// window for a one-shot check.
// logFindingHold is the least time a finding raised from a log line stays raised:
// a line seen once must not raise and clear its finding tick by tick (a replica in
// a sync loop logs output-buffer lines by the thousand, on and off).
const logFindingHold = time.Minute

// logRecent is how far back a log line keeps its finding raised: the lines since
// the previous tick, and at least those of the last logFindingHold.
func (d *diag) logRecent() time.Time {
	hold := d.s.Time.Add(-logFindingHold)
	if p := d.logSincePrev(); p.Before(hold) {
		return p
	}
	return hold
}

func (d *diag) logSincePrev() time.Time {
	if d.h.Prev != nil && !d.h.OneShot {
		return d.h.Prev.Time
	}
	return d.s.Time.Add(-recentWindow)
}

func (d *diag) aof() {
	in := d.info
	if !in.AOFEnabled {
		return
	}
	aofDir := d.s.Host.AOFDir.Path
	if aofDir == "" {
		aofDir = d.dataDir()
	}
	if in.AOFLastWriteStatus == "err" {
		cause := "aof_last_write_status:err"
		remedy := fmt.Sprintf("no setting lifts an AOF MISCONF: free space or fix permissions in %s; Redis retries every second and accepts writes again on its own. Never turn appendonly off to get writes back", aofDir)
		if ev, ok := d.newestLog(time.Time{}, monitor.LogAOFWriteError); ok {
			cause = describeLog(ev)
		}
		if dir := aofDirOf(d.s); d.s.Host.Available && dir.Known {
			cause += fmt.Sprintf("; %s has %s free, the AOF is %s", dir.Path, HumanBytes(int64(dir.Free)), HumanBytes(in.AOFCurrentSize))
		}
		d.add(IDMisconfAOF, Critical, "writes are rejected (MISCONF): Redis cannot write its append-only file", cause, remedy)
	} else if ev, ok := d.newestLog(d.logRecent(), monitor.LogAOFWriteError); ok {
		d.add(IDAOFWriteFailed, Warning, "AOF writes failed recently and Redis recovered", describeLog(ev),
			fmt.Sprintf("check free space and the disk under %s; the next failure rejects writes", aofDir))
	}
	if RewriteStorm(*in) && d.cfg.Int(SettingRewritePercent, 100) != 0 {
		cause := "aof_last_bgrewrite_status:err with aof_rewrites_consecutive_failures 0: fork failures are not counted, so Redis's own limiter never engages"
		if ev, ok := d.newestLog(time.Time{}, monitor.LogForkFailed, monitor.LogAOFRewriteError); ok {
			cause = describeLog(ev) + "; " + cause
		}
		d.add(IDAOFRewriteStorm, Critical, "automatic AOF rewrites fail at fork on every cron tick: each attempt adds an INCR file the next start must load",
			cause, fmt.Sprintf("CONFIG SET auto-aof-rewrite-percentage 0 stops the attempts (redis-guardian's rewrite_retry does, and rewrites once the fork works); then fix the fork's cause and BGREWRITEAOF to fold the INCR files in %s", aofDir))
	} else if in.AOFLastBgrewriteStatus == "err" {
		sev := Warning
		cause := "aof_last_bgrewrite_status:err"
		if in.AOFRewritesConsecutiveFailures > 0 {
			cause += fmt.Sprintf(", %d consecutive failures", in.AOFRewritesConsecutiveFailures)
		}
		if in.AOFRewritesConsecutiveFailures >= 3 {
			sev = Critical
			cause += " (Redis now backs off its automatic rewrites)"
		}
		if ev, ok := d.newestLog(time.Time{}, monitor.LogRDBWriteError, monitor.LogRDBOpenFailed, monitor.LogForkFailed, monitor.LogAOFRewriteError); ok {
			cause += "; " + describeLog(ev)
		}
		d.add(IDAOFRewriteFailed, sev, "AOF rewrites are failing: the AOF keeps growing", cause,
			fmt.Sprintf("free space for a new base file in %s and check fork health, then BGREWRITEAOF", aofDir))
	}
	if RewriteWontFit(d.s) {
		dir := aofDirOf(d.s)
		d.add(IDAOFRewriteWontFit, Critical, "the next AOF rewrite cannot fit on disk: it would fail half way through the last free space",
			fmt.Sprintf("a new base of about %s (aof_base_size, else used_memory) and %s has %s free; aof_current_size %s",
				HumanBytes(ExpectedRewrite(d.s)), dir.Path, HumanBytes(int64(dir.Free)), HumanBytes(in.AOFCurrentSize)),
			fmt.Sprintf("free space in %s (the guardian holds auto-aof-rewrite-percentage 0 until a rewrite fits)", dir.Path))
	}
	if in.AOFBaseSize > 0 && float64(in.AOFCurrentSize) > d.t.AOFGrowthRatio*float64(in.AOFBaseSize) &&
		in.AOFCurrentSize >= d.cfg.Int("auto-aof-rewrite-min-size", 64<<20) && !in.AOFRewriteInProgress {
		d.add(IDAOFGrowthHigh, Warning,
			fmt.Sprintf("the AOF is %.1fx its base size", float64(in.AOFCurrentSize)/float64(in.AOFBaseSize)),
			fmt.Sprintf("aof_current_size %s, aof_base_size %s, threshold %.1fx", HumanBytes(in.AOFCurrentSize), HumanBytes(in.AOFBaseSize), d.t.AOFGrowthRatio),
			"run BGREWRITEAOF in a quiet period; check auto-aof-rewrite-percentage is not 0 and rewrites are not failing")
	}
	var fsync []string
	if in.AOFBufferLength > d.t.AOFBufferBytes {
		fsync = append(fsync, fmt.Sprintf("aof_buffer_length %s above %s", HumanBytes(in.AOFBufferLength), HumanBytes(d.t.AOFBufferBytes)))
	}
	if p := d.h.Prev; p != nil && in.AOFDelayedFsync > p.Redis.Info.AOFDelayedFsync {
		fsync = append(fsync, fmt.Sprintf("aof_delayed_fsync rose by %d", in.AOFDelayedFsync-p.Redis.Info.AOFDelayedFsync))
	}
	if ev, ok := d.newestLog(d.logRecent(), monitor.LogAOFFsyncSlow); ok {
		fsync = append(fsync, describeLog(ev))
	}
	if len(fsync) > 0 {
		d.add(IDAOFFsyncSlow, Warning, "the disk cannot keep up with AOF fsync: writes stall", strings.Join(fsync, "; "),
			fmt.Sprintf("move %s to a faster or less busy disk; consider no-appendfsync-on-rewrite yes; appendfsync is %s", aofDir, orUnknown(d.cfg["appendfsync"])))
	}
}

func (d *diag) host() {
	h := d.s.Host
	if h.Disabled {
		return
	}
	if !h.Available {
		d.add(IDHostChecksUnavailable, Warning, "host checks are unavailable: disk, memory and fork headroom are not watched",
			orUnknown(h.Reason), "run the guardian on the Redis host (it reads /proc of the Redis process), or set host_checks: off for this instance")
		return
	}
	d.disk()
	d.tempFiles()
	d.forkMemory()
	d.processMemory()
}

// disk: can the data dir and AOF dir be written, and will the next snapshot fit.
func (d *diag) disk() {
	h, in := d.s.Host, d.info
	if dir := h.DataDir; dir.Known {
		exp := d.expectedSnapshot()
		forks := d.savePoints() || in.AOFEnabled
		if dir.Writable == monitor.No {
			d.add(IDDatadirNotWritable, Critical, "Redis cannot write its data dir: saves and rewrites will fail",
				orText(dir.WritableReason, dir.Path+" is not writable by the Redis process's user"), fmt.Sprintf("chown redis:redis %s and chmod 0750 (or fix the mount), then BGSAVE", dir.Path))
		} else if a := h.AOFDir; a.Known && a.Writable == monitor.No {
			d.add(IDDatadirNotWritable, Critical, "Redis cannot write its AOF dir: AOF writes and rewrites will fail",
				orText(a.WritableReason, a.Path+" is not writable by the Redis process's user"), fmt.Sprintf("chown -R redis:redis %s, then check aof_last_write_status", a.Path))
		}
		if forks && wontFit(dir, exp) {
			d.add(IDSnapshotWontFit, Critical, "the next snapshot will not fit on disk",
				fmt.Sprintf("%s has %s free; the snapshot needs about %s", dir.Path, HumanBytes(int64(dir.Free)), HumanBytes(exp)),
				fmt.Sprintf("free space on the filesystem of %s now (old backups, logs, stale temp files) or grow it", dir.Path))
		} else if dir.UsedPercent >= d.t.DiskUsedPercent {
			d.add(IDDiskSpaceLow, Warning, fmt.Sprintf("the data dir's filesystem is %.0f%% full", dir.UsedPercent),
				fmt.Sprintf("%s: %s free of %s (threshold %.0f%%)", dir.Path, HumanBytes(int64(dir.Free)), HumanBytes(int64(dir.Total)), d.t.DiskUsedPercent),
				"free space or grow the filesystem before a snapshot or AOF rewrite runs out of it")
		}
		if dir.InodesTotal > 0 && dir.InodesFree == 0 {
			d.add(IDDiskSpaceLow, Critical, "the data dir's filesystem has no free inodes", dir.Path,
				"remove files on that filesystem; Redis cannot create its temp file")
		}
	}
}

// forkMemory: will the host let Redis fork, and leave room for copy-on-write.
func (d *diag) forkMemory() {
	h, in := d.s.Host, d.info
	forks := d.savePoints() || in.AOFEnabled
	if forks && h.Overcommit >= 0 && h.Overcommit != 1 {
		d.add(IDOvercommitNotEnabled, Warning, "vm.overcommit_memory is not 1: a BGSAVE fork can fail with Cannot allocate memory",
			fmt.Sprintf("vm.overcommit_memory = %d", h.Overcommit),
			"sysctl vm.overcommit_memory=1 and persist it in /etc/sysctl.d/ (the Redis documentation's advice)")
	}
	if forks && nprocExhausted(h, 0) {
		d.add(IDForkNprocExhausted, Critical, "the next fork will fail: Redis's user is at its process limit",
			fmt.Sprintf("uid %d has %d tasks and the Redis process's soft RLIMIT_NPROC is %d (Linux counts threads): fork fails with EAGAIN", h.NprocUID, h.UIDTasks, h.NprocLimit),
			fmt.Sprintf("raise LimitNPROC= in the server's unit (or nproc in /etc/security/limits.d), or prlimit --pid %d --nproc=HIGHER: for the running server; or stop what else runs as uid %d", h.PID, h.NprocUID))
	}
	if forks && commitExhausted(h, 0) {
		d.add(IDForkCommitExhausted, Critical, "the next fork will fail: the kernel's commit limit is reached",
			fmt.Sprintf("vm.overcommit_memory 2: CommitLimit %s, Committed_AS %s leaves %s, and a fork of Redis commits about %s: fork fails with ENOMEM",
				HumanBytes(h.CommitLimit), HumanBytes(h.CommittedAS), HumanBytes(h.CommitLimit-h.CommittedAS), HumanBytes(h.ProcCommit)),
			"sysctl vm.overcommit_memory=1 (the Redis documentation's advice) and persist it in /etc/sysctl.d/, or raise vm.overcommit_ratio")
	}
	if forks && in.UsedMemoryRSS > 0 {
		avail := float64(h.MemAvailable + h.SwapFree)
		need := d.t.ForkHeadroomFactor * float64(in.UsedMemoryRSS)
		if h.Overcommit != 1 && h.MemTotal > 0 && avail < need {
			d.add(IDForkHeadroomLow, Warning, "too little memory is free for a fork of Redis",
				fmt.Sprintf("available memory and swap %s, Redis RSS %s, vm.overcommit_memory %d", HumanBytes(int64(avail)), HumanBytes(in.UsedMemoryRSS), h.Overcommit),
				"free memory on the host or set vm.overcommit_memory=1; a failed fork means no snapshot")
		} else if cow := max(in.RDBLastCOWSize, in.CurrentCOWPeak); cow > 0 && h.MemTotal > 0 && h.MemAvailable < uint64(cow) {
			d.add(IDForkHeadroomLow, Warning, "less memory is free than the last save's copy-on-write needed",
				fmt.Sprintf("available %s, last copy-on-write %s", HumanBytes(int64(h.MemAvailable)), HumanBytes(cow)),
				"free memory on the host or save when the write rate is lower; the OOM killer may take the child or Redis")
		}
	}
	if h.THP == "always" && (h.ProcAnonHugePages > 0 || (h.ProcAnonHugePages < 0 && d.cfg["disable-thp"] != "yes")) {
		cause := "transparent_hugepage/enabled is [always]"
		if h.ProcAnonHugePages > 0 {
			cause += fmt.Sprintf(" and the Redis process has %s in huge pages", HumanBytes(h.ProcAnonHugePages))
		}
		d.add(IDTHPEnabled, Warning, "transparent huge pages slow every fork and inflate copy-on-write", cause,
			"set disable-thp yes (Redis 6.2+) or echo madvise > /sys/kernel/mm/transparent_hugepage/enabled, then restart Redis")
	}
}

// processMemory: the cgroup limit, swap, and maxmemory against what Redis can get.
func (d *diag) processMemory() {
	h, in := d.s.Host, d.info
	d.cgroupMemory() // cgroupmem.go
	if h.ProcSwap > d.t.SwapBytes {
		d.add(IDSwapping, Warning, "part of Redis is swapped out: latency spikes follow",
			fmt.Sprintf("VmSwap %s of the Redis process", HumanBytes(h.ProcSwap)),
			"lower maxmemory or add RAM; consider vm.swappiness=1")
	}
	if in.MaxMemory > 0 {
		limit, what := int64(h.MemTotal), "host memory"
		if cg := h.Cgroup; cg.Known && cg.MemoryMax > 0 && int64(cg.MemoryMax) < limit {
			limit, what = int64(cg.MemoryMax), "the cgroup memory limit"
		}
		if limit > 0 && in.MaxMemory > limit {
			d.add(IDMaxmemoryExceedsHost, Warning, "maxmemory is larger than the memory Redis can get",
				fmt.Sprintf("maxmemory %s, %s %s", HumanBytes(in.MaxMemory), what, HumanBytes(limit)),
				"set maxmemory well below it (leave room for fork copy-on-write and fragmentation), e.g. 50-70%")
		}
	}
}

func (d *diag) tempFiles() {
	in := d.info
	if in.ForkChildRunning() || in.Loading {
		return
	}
	var names []string
	var bytes int64
	for _, f := range d.s.Host.TempFiles {
		if !StaleTemp(f, *in, d.s.Time, d.t.StaleTempMinAge) {
			continue
		}
		names = append(names, filepath.Base(f.Path))
		bytes += f.Size
	}
	if len(names) == 0 {
		return
	}
	d.add(IDStaleTempFiles, Warning, fmt.Sprintf("%d stale Redis temp file(s) hold %s", len(names), HumanBytes(bytes)),
		"left by a crashed or killed Redis: "+strings.Join(names, ", "),
		"remove them (redis-guardian's temp_cleanup does, after checking no child runs and the pid is dead)")
}

// StaleTemp reports whether a temp file is one of Redis's own leftovers that is safe
// to delete: no fork child runs, Redis is not loading, the pid in the name is dead,
// and it is older than minAge.
func StaleTemp(f monitor.TempFile, in monitor.Info, now time.Time, minAge time.Duration) bool {
	return TempNotStale(f, in, now, minAge) == ""
}

// TempNotStale says why f may not be deleted now, "" when it may: the rules of
// StaleTemp, with the reason for the executor's refusal message.
func TempNotStale(f monitor.TempFile, in monitor.Info, now time.Time, minAge time.Duration) string {
	switch {
	case in.ForkChildRunning() || in.Loading || in.AsyncLoading:
		return "Redis has a fork child or is loading"
	case f.PID != 0 && f.PIDAlive == monitor.Yes:
		return fmt.Sprintf("pid %d is alive", f.PID)
	case f.PID != 0 && f.PIDAlive != monitor.No:
		return fmt.Sprintf("cannot tell whether pid %d is alive", f.PID)
	case f.PID == 0 && (in.AOFRewriteScheduled || in.AOFRewriteInProgress):
		return "an AOF rewrite is scheduled or running"
	case minAge > 0 && now.Sub(f.ModTime) < minAge:
		return fmt.Sprintf("it is younger than %s", minAge)
	}
	return ""
}

func (d *diag) memory() {
	in := d.info
	var host int64
	if d.s.Host.Available {
		host = int64(d.s.Host.MemTotal)
	}
	if in.MaxMemory == 0 {
		d.add(IDMaxmemoryUnset, Warning, "maxmemory is not set: Redis can grow until the OOM killer stops it",
			fmt.Sprintf("used_memory %s, total_system_memory %s", HumanBytes(in.UsedMemory), HumanBytes(max(in.TotalSystemMemory, host))),
			"set maxmemory to leave room for fork copy-on-write (e.g. 50-70% of RAM) and choose maxmemory-policy")
	} else if strings.HasPrefix(in.MaxMemoryPolicy, "volatile-") && in.Keys > 0 && in.Expires == 0 {
		d.add(IDEvictionPolicyMismatch, Warning,
			fmt.Sprintf("maxmemory-policy %s can evict nothing: no key has a TTL", in.MaxMemoryPolicy),
			fmt.Sprintf("%d keys, 0 with an expire", in.Keys),
			"use an allkeys-* policy, or set TTLs on evictable keys; at maxmemory writes will fail with OOM")
	}
	d.memPressure()   // mempressure.go
	d.oomRejections() // mempressure.go
	d.fragmentation() // fragmentation.go
	if in.LatestForkUsec > d.t.ForkSlow.Microseconds() {
		d.add(IDForkSlow, Warning, fmt.Sprintf("the last fork took %s, stalling every client", time.Duration(in.LatestForkUsec)*time.Microsecond),
			fmt.Sprintf("latest_fork_usec %d, RSS %s", in.LatestForkUsec, HumanBytes(in.UsedMemoryRSS)),
			"disable transparent huge pages, avoid swap, keep the instance smaller, or move off a hypervisor with slow fork")
	}
}

func (d *diag) replication() {
	in := d.info
	if ignore, known := d.cfg["replica-ignore-disk-write-errors"]; in.Role == "slave" && known && ignore == "no" &&
		d.cfg.SavePointsSet() && d.cfg.StopWritesOnBgsaveError() {
		d.add(IDReplicaPanicRisk, Warning, "a failed save would crash this replica at the master's next write",
			"role:slave with save points, stop-writes-on-bgsave-error yes and replica-ignore-disk-write-errors no (7.0+ panics: \"Replica was unable to write command to disk\")",
			"enable redis-guardian's replica_guard (it holds stop-writes-on-bgsave-error no while this is a replica), or CONFIG SET stop-writes-on-bgsave-error no on replicas")
	}
	down := in.MasterLinkDownSinceSeconds
	if down < 0 {
		// -1: the replica never reached its master since it started (wrong host,
		// masterauth, or a full sync that never finished).
		down = in.UptimeSeconds
	}
	if in.Role == "slave" && in.MasterLinkStatus == "down" && time.Duration(down)*time.Second >= d.t.ReplLinkDownGrace {
		d.add(IDReplicationLinkDown, Warning, "the replica lost its link to the master",
			fmt.Sprintf("master_link_status:down for %ds", down),
			"check the master is up and reachable, and the master's log for full-sync or output-buffer errors")
	}
	var parts []string
	if p := d.h.Prev; p != nil && in.HasOutputBufferDisconnections && in.OutputBufferLimitDisconnections > p.Redis.Info.OutputBufferLimitDisconnections {
		parts = append(parts, fmt.Sprintf("client_output_buffer_limit_disconnections rose by %d", in.OutputBufferLimitDisconnections-p.Redis.Info.OutputBufferLimitDisconnections))
	}
	if ev, ok := d.newestLog(d.logRecent(), monitor.LogOutputBufferClosed); ok {
		parts = append(parts, strings.TrimSpace(ev.Line)+" (redis log)")
	}
	if len(parts) > 0 {
		d.add(IDReplicaBufferOverflow, Warning, "a client or replica was disconnected for overrunning its output buffer",
			strings.Join(parts, "; "),
			"for replicas, raise client-output-buffer-limit replica (e.g. 512mb 128mb 60) so a full sync can finish; otherwise it loops")
	}
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func round(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}
