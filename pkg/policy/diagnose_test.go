package policy

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// now is the fixed moment every snapshot is taken at; policy never reads the clock.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// healthy returns a snapshot of a well-configured local Redis 7.0 with AOF and RDB
// on: every case starts from it and breaks one thing.
func healthy() monitor.Snapshot {
	return monitor.Snapshot{
		Instance: "main",
		Addr:     "127.0.0.1:6379",
		Time:     now,
		Redis: monitor.RedisReading{
			Info: monitor.Info{
				Version:                 "7.0.15",
				ServerName:              "redis",
				Mode:                    "standalone",
				ProcessID:               4242,
				UptimeSeconds:           86400,
				UsedMemory:              100 * mib,
				UsedMemoryRSS:           120 * mib,
				UsedMemoryPeak:          110 * mib,
				MaxMemory:               gib,
				MaxMemoryPolicy:         "allkeys-lru",
				TotalSystemMemory:       16 * gib,
				MemFragmentationRatio:   1.2,
				MemFragmentationBytes:   20 * mib,
				HasFragmentationBytes:   true,
				RDBChangesSinceLastSave: 12,
				RDBLastSaveTime:         now.Add(-5 * time.Minute).Unix(),
				RDBLastBgsaveStatus:     "ok",
				RDBSaves:                10,
				HasRDBSaves:             true,
				RDBLastCOWSize:          2 * mib,
				AOFEnabled:              true,
				AOFLastBgrewriteStatus:  "ok",
				AOFLastWriteStatus:      "ok",
				AOFCurrentSize:          80 * mib,
				AOFBaseSize:             60 * mib,
				TotalCommandsProcessed:  1e6,
				LatestForkUsec:          2000,
				TotalForks:              11,
				Role:                    "master",
				HasErrorstats:           true,
				Keys:                    1000,
				Expires:                 100,
			},
			Config: monitor.RedisConfig{
				"dir":                         "/var/lib/redis",
				"dbfilename":                  "dump.rdb",
				"save":                        "3600 1 300 100",
				"stop-writes-on-bgsave-error": "yes",
				"appendonly":                  "yes",
				"appendfsync":                 "everysec",
				"auto-aof-rewrite-min-size":   "67108864",
				"maxmemory-policy":            "allkeys-lru",
			},
			ConfigTime: now.Add(-30 * time.Second),
		},
		Host: monitor.HostReading{
			Available: true,
			DataDir: monitor.DirReading{
				Path: "/var/lib/redis", Known: true,
				Total: uint64(100 * gib), Free: uint64(80 * gib), UsedPercent: 20,
				InodesTotal: 1e6, InodesFree: 9e5, Writable: monitor.Yes,
			},
			AOFDir: monitor.DirReading{
				Path: "/var/lib/redis/appendonlydir", Known: true,
				Total: uint64(100 * gib), Free: uint64(80 * gib), UsedPercent: 20,
				InodesTotal: 1e6, InodesFree: 9e5, Writable: monitor.Yes,
			},
			RDBFileSize:       50 * mib,
			MemTotal:          uint64(16 * gib),
			MemAvailable:      uint64(12 * gib),
			SwapTotal:         uint64(2 * gib),
			SwapFree:          uint64(2 * gib),
			Overcommit:        1,
			THP:               "madvise",
			PID:               4242,
			ProcAnonHugePages: 0,
			ProcSwap:          0,
			ProcRSS:           120 * mib,
			Cgroup:            monitor.CgroupReading{Known: true, Path: "/system.slice/redis-server.service"},
		},
		Log: monitor.LogReading{Source: "file", Path: "/var/log/redis/redis-server.log", Last: map[monitor.LogKind]monitor.LogEvent{}},
	}
}

// withLog adds a recognised log line to a snapshot.
func withLog(s *monitor.Snapshot, kind monitor.LogKind, cause string, at time.Time) {
	s.Log.Last[kind] = monitor.LogEvent{Kind: kind, Cause: cause, Time: at, Line: "4242:M 01 Jun 2025 11:59:50.000 # " + string(kind) + " " + cause}
}

// idSev is what the table compares: ids and severities in Diagnose's order. The
// texts are checked separately where they matter.
type idSev struct {
	ID  string
	Sev Severity
}

func ids(fs []Finding) []idSev {
	out := []idSev{}
	for _, f := range fs {
		out = append(out, idSev{f.ID, f.Severity})
	}
	return out
}

type diagCase struct {
	name   string
	snap   func(s *monitor.Snapshot)
	hist   func(h *History, s monitor.Snapshot)
	thr    func(t *Thresholds)
	ignore map[string]bool
	want   []idSev
	// check inspects the findings' texts, when a case is about them.
	check func(t *testing.T, fs []Finding)
}

func crit(id string) idSev { return idSev{id, Critical} }
func warn(id string) idSev { return idSev{id, Warning} }

// find returns the finding with id, failing the test when it is absent.
func find(t *testing.T, fs []Finding, id string) Finding {
	t.Helper()
	for _, f := range fs {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no %s finding in %+v", id, fs)
	return Finding{}
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}

func notContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			t.Errorf("%s %q contains %q", what, s, sub)
		}
	}
}

func diagCases() []diagCase {
	lastSave := now.Add(-time.Hour)
	rdbFailed := func(s *monitor.Snapshot) {
		s.Redis.Info.RDBLastBgsaveStatus = "err"
		s.Redis.Info.RDBLastSaveTime = lastSave.Unix()
		s.Redis.Info.RDBChangesSinceLastSave = 5000
	}
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	return []diagCase{
		{name: "healthy", want: []idSev{}},
		{
			name: "healthy without AOF or save points",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFEnabled = false
				s.Redis.Config["save"] = ""
				s.Host.Overcommit = 0 // no fork ever runs, so overcommit does not matter
			},
			want: []idSev{},
		},

		// Redis cannot be read: one finding, nothing else is guessed.
		{
			name: "unreachable",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Host.Overcommit = 0
				s.Redis.Err, s.Redis.ErrKind = fmt.Errorf("read info: %w", netErr), monitor.ErrUnreachable
			},
			want: []idSev{crit(IDRedisUnreachable)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "connection refused")
			},
		},
		{
			name: "auth failed",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Redis.Err, s.Redis.ErrKind = errors.New("WRONGPASS invalid username-password pair or user is disabled."), monitor.ErrAuth
			},
			want: []idSev{crit(IDAuthFailed)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "WRONGPASS")
				contains(t, "fix", fs[0].Fix, "password_file", "+info")
			},
		},
		{
			name: "INFO not permitted",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Redis.Err, s.Redis.ErrKind = errors.New("NOPERM this user has no permissions to run the 'info' command"), monitor.ErrCommandUnavailable
			},
			want: []idSev{crit(IDCommandUnavailable)},
		},
		{
			name: "other redis error",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Err, s.Redis.ErrKind = errors.New("LOADING Redis is loading the dataset in memory"), monitor.ErrOther
			},
			want: []idSev{crit(IDRedisUnreachable)},
		},
		{
			name: "CONFIG GET unavailable: a warning plus the rest",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Config = nil
				s.Redis.ConfigErr = errors.New("ERR unknown command 'CONFIG', with args beginning with: 'GET' 'dir'")
				s.Redis.ConfigErrKind = monitor.ErrCommandUnavailable
				s.Redis.Info.MaxMemory = 0
			},
			want: []idSev{warn(IDCommandUnavailable), warn(IDMaxmemoryUnset)},
			check: func(t *testing.T, fs []Finding) {
				f := find(t, fs, IDCommandUnavailable)
				contains(t, "summary", f.Summary, "remedies cannot run")
				contains(t, "fix", f.Fix, "config_command")
			},
		},
		{
			name: "reply refused by the bounds",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Redis.Err = fmt.Errorf("INFO: %w", &monitor.ReplyError{Header: "$2147483647", Reason: "bulk length over the limit of 67108864 bytes"})
				s.Redis.ErrKind = monitor.ErrReplyInvalid
			},
			want: []idSev{crit(IDRedisReplyInvalid)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "$2147483647", "bulk length over")
				contains(t, "fix", fs[0].Fix, "ss -ltnp", "TLS")
			},
		},
		{
			name: "CONFIG GET reply refused: critical, plus the rest",
			snap: func(s *monitor.Snapshot) {
				s.Redis.ConfigErr = fmt.Errorf("CONFIG GET: %w: CONFIG GET answered \"dbfilename\", which was not asked for", monitor.ErrInvalidReply)
				s.Redis.ConfigErrKind = monitor.ErrReplyInvalid
				s.Redis.Info.MaxMemory = 0
			},
			want: []idSev{crit(IDRedisReplyInvalid), warn(IDMaxmemoryUnset)},
			check: func(t *testing.T, fs []Finding) {
				f := find(t, fs, IDRedisReplyInvalid)
				contains(t, "summary", f.Summary, "CONFIG GET", "remedies cannot run")
				contains(t, "cause", f.Cause, "not asked for")
			},
		},
		{
			name: "CONFIG GET failed otherwise",
			snap: func(s *monitor.Snapshot) {
				s.Redis.ConfigErr = errors.New("i/o timeout")
				s.Redis.ConfigErrKind = monitor.ErrUnreachable
			},
			want: []idSev{warn(IDCommandUnavailable)},
			check: func(t *testing.T, fs []Finding) {
				notContains(t, "summary", fs[0].Summary, "remedies cannot run")
			},
		},
		{
			name: "CONFIG unknown: a failed save is assumed to reject writes (Redis defaults)",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Redis.Config = nil
				s.Redis.ConfigErr = errors.New("NOPERM")
				s.Redis.ConfigErrKind = monitor.ErrCommandUnavailable
			},
			want: []idSev{crit(IDMisconfRDB), warn(IDCommandUnavailable)},
		},

		// RDB.
		{
			name: "misconf rdb, cause from a fresh fork log line",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				withLog(s, monitor.LogForkFailed, "Resource temporarily unavailable", now.Add(-10*time.Second))
			},
			want: []idSev{crit(IDMisconfRDB)},
			check: func(t *testing.T, fs []Finding) {
				f := fs[0]
				contains(t, "cause", f.Cause, "fork: Resource temporarily unavailable (redis log)", "5000 changes since the last successful save (1h0m0s ago)")
				contains(t, "fix", f.Fix, "stop-writes-on-bgsave-error no", "LimitNPROC")
				contains(t, "summary", f.Summary, "MISCONF")
			},
		},
		{
			name: "misconf rdb ignores a log line older than the last successful save",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				withLog(s, monitor.LogForkFailed, "Resource temporarily unavailable", lastSave.Add(-time.Hour))
			},
			want: []idSev{crit(IDMisconfRDB)},
			check: func(t *testing.T, fs []Finding) {
				notContains(t, "cause", fs[0].Cause, "fork:", "Resource temporarily unavailable")
				notContains(t, "fix", fs[0].Fix, "LimitNPROC")
				contains(t, "cause", fs[0].Cause, "no log line or host reading explains it")
			},
		},
		{
			name: "misconf rdb picks the newest of several log lines",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				withLog(s, monitor.LogForkFailed, "Cannot allocate memory", now.Add(-30*time.Minute))
				withLog(s, monitor.LogRDBWriteError, "No space left on device", now.Add(-time.Minute))
			},
			want: []idSev{crit(IDMisconfRDB)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "write error: No space left on device (redis log)")
				notContains(t, "cause", fs[0].Cause, "Cannot allocate memory")
				contains(t, "fix", fs[0].Fix, "free space on the filesystem of /var/lib/redis")
			},
		},
		{
			name: "misconf rdb with an OOM-killed child",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				withLog(s, monitor.LogBgsaveSignal, "signal 9", now.Add(-time.Minute))
			},
			want: []idSev{crit(IDMisconfRDB)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "killed by signal 9 (redis log)")
				contains(t, "fix", fs[0].Fix, "OOM killer")
			},
		},
		{
			name: "misconf rdb with a full disk and no log",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Host.DataDir.Free, s.Host.DataDir.UsedPercent = 0, 100
			},
			want: []idSev{crit(IDMisconfRDB), crit(IDSnapshotWontFit)},
			check: func(t *testing.T, fs []Finding) {
				f := find(t, fs, IDMisconfRDB)
				contains(t, "cause", f.Cause, "dir has 0 B free, the snapshot needs about 50.0 MiB")
				contains(t, "fix", f.Fix, "free space on the filesystem of /var/lib/redis")
				contains(t, "cause", find(t, fs, IDSnapshotWontFit).Cause, "/var/lib/redis has 0 B free; the snapshot needs about 50.0 MiB")
			},
		},
		{
			name: "misconf rdb with an unwritable dir",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Host.DataDir.Writable, s.Host.DataDir.WritableReason = monitor.No, "owned by root:root mode 0755"
			},
			want: []idSev{crit(IDDatadirNotWritable), crit(IDMisconfRDB)},
			check: func(t *testing.T, fs []Finding) {
				f := find(t, fs, IDMisconfRDB)
				contains(t, "cause", f.Cause, "dir not writable: owned by root:root mode 0755")
				contains(t, "fix", f.Fix, "give the redis user write access to /var/lib/redis")
			},
		},
		{
			name: "misconf rdb with new cgroup OOM kills",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Host.Cgroup.OOMKill = 3
			},
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				prev.Host.Cgroup.OOMKill = 2
				h.Prev = &prev
			},
			want: []idSev{crit(IDCgroupOOMKill), crit(IDMisconfRDB)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", find(t, fs, IDMisconfRDB).Cause, "cgroup /system.slice/redis-server.service recorded 3 OOM kills")
			},
		},
		{
			name: "stop-writes-on-bgsave-error no: bgsave failed, not misconf",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Redis.Config["stop-writes-on-bgsave-error"] = "no"
			},
			want: []idSev{crit(IDBgsaveFailed)},
			check: func(t *testing.T, fs []Finding) {
				notContains(t, "summary", fs[0].Summary, "MISCONF")
				notContains(t, "fix", fs[0].Fix, "stop-writes-on-bgsave-error")
			},
		},
		{
			name: "no save points: a failed manual BGSAVE rejects nothing",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Redis.Config["save"] = ""
			},
			want: []idSev{crit(IDBgsaveFailed)},
		},

		// AOF.
		{
			name: "misconf aof with a full disk",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFLastWriteStatus = "err"
				s.Host.DataDir.Free, s.Host.DataDir.UsedPercent = 0, 100
				s.Host.AOFDir.Free, s.Host.AOFDir.UsedPercent = 0, 100 // the same file system
				withLog(s, monitor.LogAOFWriteError, "No space left on device", now.Add(-time.Second))
			},
			want: []idSev{crit(IDAOFRewriteWontFit), crit(IDMisconfAOF), crit(IDSnapshotWontFit)},
			check: func(t *testing.T, fs []Finding) {
				f := find(t, fs, IDMisconfAOF)
				contains(t, "cause", f.Cause, "AOF write error: No space left on device (redis log)", "/var/lib/redis/appendonlydir has 0 B free, the AOF is 80.0 MiB")
				contains(t, "fix", f.Fix, "/var/lib/redis/appendonlydir", "Never turn appendonly off")
			},
		},
		{
			name: "aof write error recovered",
			snap: func(s *monitor.Snapshot) {
				withLog(s, monitor.LogAOFWriteError, "No space left on device", now.Add(-2*time.Minute))
			},
			want: []idSev{warn(IDAOFWriteFailed)},
		},
		{
			name: "aof write error from before the previous tick is not new",
			snap: func(s *monitor.Snapshot) {
				withLog(s, monitor.LogAOFWriteError, "No space left on device", now.Add(-2*time.Minute))
			},
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				h.Prev = &prev
			},
			want: []idSev{},
		},
		{
			name: "aof disabled: AOF fields are ignored",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFEnabled = false
				s.Redis.Info.AOFLastWriteStatus = "err"
				s.Redis.Info.AOFLastBgrewriteStatus = "err"
			},
			want: []idSev{},
		},
		{
			name: "aof rewrite failed once",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFLastBgrewriteStatus = "err"
				s.Redis.Info.AOFRewritesConsecutiveFailures = 1
			},
			want: []idSev{warn(IDAOFRewriteFailed)},
		},
		{
			name: "aof rewrite storm: a fork failure, not counted",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFLastBgrewriteStatus = "err"
				withLog(s, monitor.LogForkFailed, "Resource temporarily unavailable", now.Add(-time.Second))
			},
			want: []idSev{crit(IDAOFRewriteStorm)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "Resource temporarily unavailable", "consecutive_failures 0")
			},
		},
		{
			name: "aof rewrite failed at fork, rewrites held off",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFLastBgrewriteStatus = "err"
				s.Redis.Config["auto-aof-rewrite-percentage"] = "0"
			},
			want: []idSev{warn(IDAOFRewriteFailed)},
		},
		{
			name: "aof rewrite will not fit",
			snap: func(s *monitor.Snapshot) {
				s.Host.AOFDir.Free = uint64(10 * mib) // the base is 60 MiB
			},
			want: []idSev{crit(IDAOFRewriteWontFit)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "60.0 MiB", "10.0 MiB free")
			},
		},
		{
			name: "aof rewrite failing repeatedly",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFLastBgrewriteStatus = "err"
				s.Redis.Info.AOFRewritesConsecutiveFailures = 3
				withLog(s, monitor.LogAOFRewriteError, "", now.Add(-time.Minute))
			},
			want: []idSev{crit(IDAOFRewriteFailed)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "3 consecutive failures", "backs off")
			},
		},
		{
			name: "aof growth",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFBaseSize, s.Redis.Info.AOFCurrentSize = 100*mib, 400*mib
			},
			want: []idSev{warn(IDAOFGrowthHigh)},
		},
		{
			name: "aof growth below auto-aof-rewrite-min-size",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFBaseSize, s.Redis.Info.AOFCurrentSize = 10*mib, 40*mib
			},
			want: []idSev{},
		},
		{
			name: "aof growth while a rewrite runs",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.AOFBaseSize, s.Redis.Info.AOFCurrentSize = 100*mib, 400*mib
				s.Redis.Info.AOFRewriteInProgress = true
			},
			want: []idSev{},
		},
		{
			name: "aof buffer backlog",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.AOFBufferLength = 20 * mib },
			want: []idSev{warn(IDAOFFsyncSlow)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "fix", fs[0].Fix, "appendfsync is everysec")
			},
		},
		{
			name: "aof delayed fsync rising",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.AOFDelayedFsync = 7 },
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				prev.Redis.Info.AOFDelayedFsync = 5
				h.Prev = &prev
			},
			want: []idSev{warn(IDAOFFsyncSlow)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "aof_delayed_fsync rose by 2")
			},
		},
		{
			name: "aof fsync slow log line",
			snap: func(s *monitor.Snapshot) {
				withLog(s, monitor.LogAOFFsyncSlow, "", now.Add(-5*time.Second))
			},
			want: []idSev{warn(IDAOFFsyncSlow)},
		},

		// Disk.
		{
			name: "disk nearly full but the snapshot fits",
			snap: func(s *monitor.Snapshot) {
				s.Host.DataDir.UsedPercent, s.Host.DataDir.Free = 95, uint64(5*gib)
			},
			want: []idSev{warn(IDDiskSpaceLow)},
		},
		{
			name: "snapshot will not fit",
			snap: func(s *monitor.Snapshot) {
				s.Host.DataDir.UsedPercent, s.Host.DataDir.Free = 99, uint64(10*mib)
			},
			want: []idSev{crit(IDSnapshotWontFit)},
		},
		{
			name: "snapshot estimate from used_memory when there is no RDB file",
			snap: func(s *monitor.Snapshot) {
				s.Host.RDBFileSize = -1
				s.Host.DataDir.UsedPercent, s.Host.DataDir.Free = 50, uint64(60*mib) // > 50 MiB file, < 100 MiB used_memory
			},
			want: []idSev{crit(IDSnapshotWontFit)},
		},
		{
			name: "nproc reached: the next fork fails",
			snap: func(s *monitor.Snapshot) {
				s.Host.NprocLimit, s.Host.NprocUID, s.Host.UIDTasks = 64, 102, 64
			},
			want: []idSev{crit(IDForkNprocExhausted)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", find(t, fs, IDForkNprocExhausted).Cause, "uid 102 has 64 tasks and the Redis process's soft RLIMIT_NPROC is 64")
			},
		},
		{
			name: "nproc one task short: a fork still fits",
			snap: func(s *monitor.Snapshot) {
				s.Host.NprocLimit, s.Host.NprocUID, s.Host.UIDTasks = 64, 102, 63
			},
			want: []idSev{},
		},
		{
			name: "nproc not counted (unlimited or root)",
			snap: func(s *monitor.Snapshot) {
				s.Host.NprocLimit, s.Host.UIDTasks = 0, -1
			},
			want: []idSev{},
		},
		{
			name: "commit limit reached under strict overcommit",
			snap: func(s *monitor.Snapshot) {
				s.Host.Overcommit = 2
				s.Host.CommitLimit, s.Host.CommittedAS, s.Host.ProcCommit = 10*gib, 10*gib-50*mib, 200*mib
			},
			want: []idSev{crit(IDForkCommitExhausted), warn(IDOvercommitNotEnabled)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", find(t, fs, IDForkCommitExhausted).Cause, "leaves 50.0 MiB, and a fork of Redis commits about 200.0 MiB")
			},
		},
		{
			name: "commit limit with room",
			snap: func(s *monitor.Snapshot) {
				s.Host.Overcommit = 2
				s.Host.CommitLimit, s.Host.CommittedAS, s.Host.ProcCommit = 10*gib, 5*gib, 200*mib
			},
			want: []idSev{warn(IDOvercommitNotEnabled)},
		},
		{
			name: "no inodes",
			snap: func(s *monitor.Snapshot) { s.Host.DataDir.InodesFree = 0 },
			want: []idSev{crit(IDDiskSpaceLow)},
		},
		{
			name: "data dir not writable",
			snap: func(s *monitor.Snapshot) {
				s.Host.DataDir.Writable, s.Host.DataDir.WritableReason = monitor.No, "read-only file system"
			},
			want: []idSev{crit(IDDatadirNotWritable)},
		},
		{
			name: "aof dir not writable",
			snap: func(s *monitor.Snapshot) {
				s.Host.AOFDir.Writable, s.Host.AOFDir.WritableReason = monitor.No, "owned by root"
			},
			want: []idSev{crit(IDDatadirNotWritable)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "fix", fs[0].Fix, "/var/lib/redis/appendonlydir")
			},
		},
		{
			name: "stale temp file",
			snap: func(s *monitor.Snapshot) {
				s.Host.TempFiles = []monitor.TempFile{
					{Path: "/var/lib/redis/temp-1234.rdb", Kind: monitor.TempBgsave, Size: 40 * mib, ModTime: now.Add(-time.Hour), PID: 1234, PIDAlive: monitor.No},
					{Path: "/var/lib/redis/temp-rewriteaof-bg-1300.aof", Kind: monitor.TempRewriteBg, Size: 10 * mib, ModTime: now.Add(-2 * time.Hour), PID: 1300, PIDAlive: monitor.No},
					{Path: "/var/lib/redis/temp-4242.rdb", Kind: monitor.TempBgsave, Size: mib, ModTime: now.Add(-time.Hour), PID: 4242, PIDAlive: monitor.Yes},
				}
			},
			want: []idSev{warn(IDStaleTempFiles)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "summary", fs[0].Summary, "2 stale Redis temp file(s) hold 50.0 MiB")
				contains(t, "cause", fs[0].Cause, "temp-1234.rdb, temp-rewriteaof-bg-1300.aof")
				notContains(t, "cause", fs[0].Cause, "/var/lib/redis/", "temp-4242.rdb")
			},
		},
		{
			name: "temp file while a save child runs is not stale",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.RDBBgsaveInProgress = true
				s.Host.TempFiles = []monitor.TempFile{
					{Path: "/var/lib/redis/temp-1234.rdb", Kind: monitor.TempBgsave, Size: 40 * mib, ModTime: now.Add(-time.Hour), PID: 1234, PIDAlive: monitor.No},
				}
			},
			want: []idSev{},
		},

		// Fork and kernel.
		{
			name: "overcommit 0 with plenty of memory",
			snap: func(s *monitor.Snapshot) { s.Host.Overcommit = 0 },
			want: []idSev{warn(IDOvercommitNotEnabled)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "vm.overcommit_memory = 0")
			},
		},
		{
			name: "overcommit unknown",
			snap: func(s *monitor.Snapshot) { s.Host.Overcommit = -1 },
			want: []idSev{},
		},
		{
			name: "overcommit 2 and too little memory for a fork",
			snap: func(s *monitor.Snapshot) {
				s.Host.Overcommit = 2
				s.Host.MemAvailable, s.Host.SwapFree = uint64(50*mib), uint64(20*mib)
			},
			want: []idSev{warn(IDForkHeadroomLow), warn(IDOvercommitNotEnabled)},
		},
		{
			name: "less memory free than the last copy-on-write",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.RDBLastCOWSize = 600 * mib
				s.Host.MemAvailable = uint64(500 * mib)
			},
			want: []idSev{warn(IDForkHeadroomLow)},
		},
		{
			name: "thp always and used by redis",
			snap: func(s *monitor.Snapshot) {
				s.Host.THP = "always"
				s.Host.ProcAnonHugePages = 8 * mib
			},
			want: []idSev{warn(IDTHPEnabled)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "[always]", "8.0 MiB in huge pages")
			},
		},
		{
			name: "thp always but redis opted out",
			snap: func(s *monitor.Snapshot) {
				s.Host.THP = "always"
				s.Host.ProcAnonHugePages = -1
				s.Redis.Config["disable-thp"] = "yes"
			},
			want: []idSev{},
		},
		{
			name: "thp always, process unknown, disable-thp not set",
			snap: func(s *monitor.Snapshot) {
				s.Host.THP = "always"
				s.Host.ProcAnonHugePages = -1
			},
			want: []idSev{warn(IDTHPEnabled)},
		},
		{
			name: "cgroup limit too tight for a fork",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.MaxMemory = 150 * mib
				s.Host.Cgroup.MemoryMax, s.Host.Cgroup.MemoryCurrent, s.Host.Cgroup.OOMKill = uint64(200*mib), uint64(130*mib), 1
			},
			want: []idSev{warn(IDCgroupMemoryTight)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "memory.max 200.0 MiB", "1 OOM kills so far")
				contains(t, "fix", fs[0].Fix, "2x")
			},
		},
		{
			// Three redis-servers in one v1 group: Redis's own RSS is far below the
			// limit, the group's working set is not.
			name: "cgroup v1 limit too tight for the group's working set and a fork",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.MaxMemory = 150 * mib
				s.Host.Cgroup = monitor.CgroupReading{Known: true, Version: 1, Path: "/redis", LimitPath: "/redis",
					MemoryMax: uint64(400 * mib), MemoryCurrent: uint64(380 * mib), WorkingSet: uint64(360 * mib)}
			},
			want: []idSev{warn(IDCgroupMemoryTight)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "cgroup /redis (v1): memory.limit_in_bytes 400.0 MiB", "working set 360.0 MiB", "memory.usage_in_bytes 380.0 MiB")
				contains(t, "fix", fs[0].Fix, "at least 480.0 MiB")
			},
		},
		{
			// The usage is near the limit, but most of it is inactive page cache
			// (the RDB just written) that the kernel drops before it kills.
			name: "cgroup v1 usage near the limit in page cache is room",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.MaxMemory = 150 * mib
				s.Host.Cgroup = monitor.CgroupReading{Known: true, Version: 1, Path: "/redis", LimitPath: "/redis",
					MemoryMax: uint64(300 * mib), MemoryCurrent: uint64(290 * mib), WorkingSet: uint64(130 * mib)}
			},
			want: []idSev{},
		},
		{
			name: "cgroup v1 OOM kill since the last reading",
			snap: func(s *monitor.Snapshot) {
				s.Host.Cgroup = monitor.CgroupReading{Known: true, Version: 1, Path: "/redis", MemoryCurrent: uint64(200 * mib), WorkingSet: uint64(190 * mib), OOMKill: 3}
			},
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				prev.Host.Cgroup.OOMKill = 1
				h.Prev = &prev
			},
			want: []idSev{crit(IDCgroupOOMKill)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "summary", fs[0].Summary, "killed 2 process(es)")
				contains(t, "cause", fs[0].Cause, "cgroup /redis (v1)", "memory.oom_control rose by 2", "3 since the group was made")
				contains(t, "fix", fs[0].Fix, "copy-on-write", "oom-score-adj")
			},
		},
		{
			name: "cgroup v2 OOM kill since the last reading",
			snap: func(s *monitor.Snapshot) { s.Host.Cgroup.Version, s.Host.Cgroup.OOMKill = 2, 1 },
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Host.Cgroup.OOMKill = 0
				h.Prev = &prev
			},
			want: []idSev{crit(IDCgroupOOMKill)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "/system.slice/redis-server.service (v2): oom_kill of memory.events rose by 1")
			},
		},
		{
			// The counter runs from the group's creation: old kills are no news.
			name: "cgroup OOM kills from before the first reading",
			snap: func(s *monitor.Snapshot) { s.Host.Cgroup.OOMKill = 5 },
			want: []idSev{},
		},
		{
			name: "cgroup OOM kills unchanged",
			snap: func(s *monitor.Snapshot) { s.Host.Cgroup.OOMKill = 5 },
			hist: func(h *History, s monitor.Snapshot) { prev := s; h.Prev = &prev },
			want: []idSev{},
		},
		{
			// Redis moved to another group (or its unit made a fresh one): its
			// counter is not the old group's.
			name: "cgroup OOM kills of another group",
			snap: func(s *monitor.Snapshot) { s.Host.Cgroup.OOMKill = 5 },
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Host.Cgroup.Path, prev.Host.Cgroup.OOMKill = "/system.slice/other.service", 0
				h.Prev = &prev
			},
			want: []idSev{},
		},
		{
			name: "swapping",
			snap: func(s *monitor.Snapshot) { s.Host.ProcSwap = 10 * mib },
			want: []idSev{warn(IDSwapping)},
		},
		{
			name: "slow fork",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.LatestForkUsec = 800000 },
			want: []idSev{warn(IDForkSlow)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "summary", fs[0].Summary, "800ms")
			},
		},
		{
			name: "slow fork threshold override",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.LatestForkUsec = 800000 },
			thr:  func(t *Thresholds) { t.ForkSlow = time.Second },
			want: []idSev{},
		},

		// Memory.
		{
			name: "maxmemory unset",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.MaxMemory = 0 },
			want: []idSev{warn(IDMaxmemoryUnset)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "total_system_memory 16.0 GiB")
			},
		},
		{
			name: "maxmemory near the limit",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.UsedMemory = 950 * mib },
			want: []idSev{warn(IDMaxmemoryNearLimit)},
		},
		{
			name: "maxmemory reached with noeviction",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.UsedMemory = gib
				s.Redis.Info.MaxMemoryPolicy = "noeviction"
			},
			want: []idSev{crit(IDMaxmemoryNearLimit)},
		},
		{
			// Hovering just under maxmemory (a runaway client's buffer at the
			// edge) is full too: no flip to warning and back at every tick.
			name: "maxmemory at 99.6% with noeviction",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.UsedMemory = gib - 4*mib
				s.Redis.Info.MaxMemoryPolicy = "noeviction"
			},
			want: []idSev{crit(IDMaxmemoryNearLimit)},
		},
		{
			name: "maxmemory above host memory",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.MaxMemory = 32 * gib },
			want: []idSev{warn(IDMaxmemoryExceedsHost)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "host memory 16.0 GiB")
			},
		},
		{
			name: "maxmemory above the cgroup limit",
			snap: func(s *monitor.Snapshot) {
				s.Host.Cgroup.MemoryMax = uint64(4 * gib)
				s.Redis.Info.MaxMemory = 6 * gib
			},
			want: []idSev{warn(IDMaxmemoryExceedsHost)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "the cgroup memory limit 4.0 GiB")
			},
		},
		{
			// The counter runs from Redis's start: without an earlier reading
			// it is history, not a problem now (issue 24: "rejected 2 commands"
			// with maxmemory removed).
			name: "OOM rejections since start alone",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.ErrorstatOOM = 5 },
			want: []idSev{},
		},
		{
			name: "OOM rejections since the previous reading",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.ErrorstatOOM, s.Redis.Info.UptimeSeconds = 7, 3600 },
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				prev.Redis.Info.ErrorstatOOM = 5
				h.Prev = &prev
			},
			want: []idSev{warn(IDOOMRejections)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "summary", fs[0].Summary, "rejected 2 commands with OOM in the last 1s")
				contains(t, "cause", fs[0].Cause, "errorstat_OOM rose by 2 (7 since Redis started, uptime 1h0m0s)")
			},
		},
		{
			name: "OOM counter of a restarted Redis counts from zero",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.ErrorstatOOM, s.Redis.Info.RunID = 3, "new" },
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				prev.Redis.Info.ErrorstatOOM, prev.Redis.Info.RunID = 9, "old"
				h.Prev = &prev
			},
			want: []idSev{warn(IDOOMRejections)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "summary", fs[0].Summary, "rejected 3 commands")
			},
		},
		{
			name: "no new OOM rejections since the previous tick",
			snap: func(s *monitor.Snapshot) { s.Redis.Info.ErrorstatOOM = 5 },
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				h.Prev = &prev
			},
			want: []idSev{},
		},
		{
			name: "volatile policy and no TTLs",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.MaxMemoryPolicy = "volatile-lru"
				s.Redis.Info.Expires = 0
			},
			want: []idSev{warn(IDEvictionPolicyMismatch)},
		},
		{
			name: "fragmentation",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.MemFragmentationRatio = 2.1
				s.Redis.Info.UsedMemoryRSS = 210 * mib
				s.Redis.Info.HasFragmentationBytes = false // 6.x: waste is RSS - used
			},
			want: []idSev{warn(IDFragmentationHigh)},
		},
		{
			name: "fragmentation ratio high but little waste",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.MemFragmentationRatio = 7.36
				s.Redis.Info.MemFragmentationBytes = 5 * mib
			},
			want: []idSev{},
		},

		// Replication.
		{
			name: "replica link down",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.Role, s.Redis.Info.MasterLinkStatus, s.Redis.Info.MasterLinkDownSinceSeconds = "slave", "down", 30
			},
			want: []idSev{warn(IDReplicationLinkDown)},
		},
		{
			name: "replica that a failed save would crash",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.Role, s.Redis.Info.MasterLinkStatus = "slave", "up"
				s.Redis.Config["replica-ignore-disk-write-errors"] = "no"
			},
			want: []idSev{warn(IDReplicaPanicRisk)},
		},
		{
			name: "replica that ignores disk write errors",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.Role, s.Redis.Info.MasterLinkStatus = "slave", "up"
				s.Redis.Config["replica-ignore-disk-write-errors"] = "yes"
			},
			want: []idSev{},
		},
		{
			name: "replica link down within the grace period",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.Role, s.Redis.Info.MasterLinkStatus, s.Redis.Info.MasterLinkDownSinceSeconds = "slave", "down", 5
			},
			want: []idSev{},
		},
		{
			name: "output buffer disconnections rising (7.4+)",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.HasOutputBufferDisconnections = true
				s.Redis.Info.OutputBufferLimitDisconnections = 4
			},
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				prev.Redis.Info.OutputBufferLimitDisconnections = 1
				h.Prev = &prev
			},
			want: []idSev{warn(IDReplicaBufferOverflow)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "rose by 3")
			},
		},
		{
			name: "output buffer log line",
			snap: func(s *monitor.Snapshot) {
				withLog(s, monitor.LogOutputBufferClosed, "", now.Add(-time.Minute))
			},
			want: []idSev{warn(IDReplicaBufferOverflow)},
		},
		{
			// Raised from a log line, the finding stays for logFindingHold, not
			// only for the tick that saw the line (no raise/clear flapping).
			name: "output buffer log line before the previous tick, within the hold",
			snap: func(s *monitor.Snapshot) {
				withLog(s, monitor.LogOutputBufferClosed, "", now.Add(-30*time.Second))
			},
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				h.Prev = &prev
			},
			want: []idSev{warn(IDReplicaBufferOverflow)},
		},
		{
			name: "output buffer log line older than the hold",
			snap: func(s *monitor.Snapshot) {
				withLog(s, monitor.LogOutputBufferClosed, "", now.Add(-2*time.Minute))
			},
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-time.Second)
				h.Prev = &prev
			},
			want: []idSev{},
		},

		// Host readings.
		{
			name: "host checks unavailable",
			snap: func(s *monitor.Snapshot) {
				s.Host = monitor.HostReading{Reason: "redis is not local", RDBFileSize: -1, Overcommit: -1, PID: -1}
			},
			want: []idSev{warn(IDHostChecksUnavailable)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "cause", fs[0].Cause, "redis is not local")
			},
		},
		{
			name: "host checks unavailable, zero host reading",
			snap: func(s *monitor.Snapshot) { s.Host = monitor.HostReading{} },
			want: []idSev{warn(IDHostChecksUnavailable)},
		},
		{
			name: "host checks disabled: nothing about the host",
			snap: func(s *monitor.Snapshot) {
				s.Host = monitor.HostReading{Disabled: true, Overcommit: 0, THP: "always", ProcSwap: gib}
			},
			want: []idSev{},
		},

		// The log.
		{
			name: "log file is a FIFO",
			snap: func(s *monitor.Snapshot) {
				s.Log.Err = fmt.Errorf("follow redis log: %w", &monitor.NotRegularError{Path: "/var/log/redis/redis-server.log", Type: "FIFO"})
			},
			want: []idSev{warn(IDLogFileNotRegular)},
			check: func(t *testing.T, fs []Finding) {
				contains(t, "summary", fs[0].Summary, "/var/log/redis/redis-server.log is a FIFO, not a regular file")
			},
		},
		{
			name: "log file missing is no finding",
			snap: func(s *monitor.Snapshot) {
				s.Log.Err = fmt.Errorf("follow redis log: %w", syscall.ENOENT)
			},
			want: []idSev{},
		},

		// Ignoring and ordering.
		{
			name: "ignored findings are dropped",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.MaxMemory = 0
				s.Host.Overcommit = 0
				s.Host.ProcSwap = 10 * mib
			},
			ignore: map[string]bool{IDMaxmemoryUnset: true, IDSwapping: true},
			want:   []idSev{warn(IDOvercommitNotEnabled)},
		},
		{
			name: "critical before warning, then by id",
			snap: func(s *monitor.Snapshot) {
				rdbFailed(s)
				s.Redis.Info.MaxMemory = 0
				s.Host.ProcSwap = 10 * mib
				s.Host.Overcommit = 0
				s.Host.DataDir.Writable, s.Host.DataDir.WritableReason = monitor.No, "permission denied"
			},
			want: []idSev{crit(IDDatadirNotWritable), crit(IDMisconfRDB), warn(IDMaxmemoryUnset), warn(IDOvercommitNotEnabled), warn(IDSwapping)},
		},
	}
}

func runCase(tc diagCase) []Finding {
	s := healthy()
	if tc.snap != nil {
		tc.snap(&s)
	}
	var h History
	if tc.hist != nil {
		tc.hist(&h, s)
	}
	thr := DefaultThresholds()
	if tc.thr != nil {
		tc.thr(&thr)
	}
	return Diagnose(s, h, thr, tc.ignore)
}

func TestDiagnose(t *testing.T) {
	t.Parallel()
	for _, tc := range diagCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := runCase(tc)
			if diff := cmp.Diff(tc.want, ids(fs)); diff != "" {
				t.Fatalf("findings mismatch (-want +got):\n%s\nfindings: %+v", diff, fs)
			}
			for _, f := range fs {
				if f.Summary == "" || f.Cause == "" || f.Fix == "" {
					t.Errorf("%s: summary, cause and remedy must all be set: %+v", f.ID, f)
				}
			}
			if tc.check != nil {
				tc.check(t, fs)
			}
		})
	}
}

// TestDiagnoseCoversEveryID fails when a finding id is added to KnownIDs without a
// table case that produces it.
func TestDiagnoseCoversEveryID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, tc := range diagCases() {
		for _, f := range runCase(tc) {
			seen[f.ID] = true
		}
	}
	// Findings a remedy raises about itself, and the ledger's, are covered by their own tests.
	raisedByRemedies := map[string]bool{IDRewriteDeferredTooLong: true, IDLedgerUnreadable: true, IDLedgerStranded: true, IDStateDirInsecure: true,
		IDHeldValueInConfigFile: true, IDConfigFileUnprotected: true, IDReplicaResyncLoop: true,
		IDOOMShieldUnavailable: true, IDOOMScoreAdjIneffective: true, IDForkDeferred: true, IDForkWontFit: true, IDForkBudgetMismatch: true,
		IDOOMReliefRaised: true, IDOOMReliefNoRoom: true}
	for _, id := range KnownIDs {
		if !seen[id] && !raisedByRemedies[id] {
			t.Errorf("no case in diagCases produces %q", id)
		}
	}
	for id := range seen {
		if !slices.Contains(KnownIDs, id) {
			t.Errorf("Diagnose produced %q, which is not in KnownIDs", id)
		}
	}
}

// TestDiagnoseDoesNotModifyInput guards the purity Diagnose promises: the caller
// keeps the snapshot as the next tick's History.Prev.
func TestDiagnoseDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	s := healthy()
	s.Redis.Info.RDBLastBgsaveStatus = "err"
	withLog(&s, monitor.LogForkFailed, "Cannot allocate memory", now)
	before := healthy()
	before.Redis.Info.RDBLastBgsaveStatus = "err"
	withLog(&before, monitor.LogForkFailed, "Cannot allocate memory", now)
	ignore := map[string]bool{IDMisconfRDB: true}
	_ = Diagnose(s, History{}, DefaultThresholds(), ignore)
	if diff := cmp.Diff(before, s, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
		t.Errorf("Diagnose modified its snapshot (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]bool{IDMisconfRDB: true}, ignore); diff != "" {
		t.Errorf("Diagnose modified the ignore map: %s", diff)
	}
}

func TestStaleTemp(t *testing.T) {
	t.Parallel()
	const minAge = 10 * time.Minute
	old := now.Add(-time.Hour)
	dead := monitor.TempFile{Path: "/var/lib/redis/temp-1234.rdb", Kind: monitor.TempBgsave, ModTime: old, PID: 1234, PIDAlive: monitor.No}
	manifest := monitor.TempFile{Path: "/var/lib/redis/appendonlydir/temp-appendonly.aof.manifest", Kind: monitor.TempAOFManifest, ModTime: old}
	for _, tc := range []struct {
		name string
		f    monitor.TempFile
		in   monitor.Info
		want bool
	}{
		{name: "dead pid, old", f: dead, want: true},
		{name: "rdb child running", f: dead, in: monitor.Info{RDBBgsaveInProgress: true}},
		{name: "aof rewrite running", f: dead, in: monitor.Info{AOFRewriteInProgress: true}},
		{name: "module fork running", f: dead, in: monitor.Info{ModuleForkInProgress: true}},
		{name: "loading", f: dead, in: monitor.Info{Loading: true}},
		{name: "async loading", f: dead, in: monitor.Info{AsyncLoading: true}},
		{name: "pid alive", f: func() monitor.TempFile { f := dead; f.PIDAlive = monitor.Yes; return f }()},
		{name: "pid liveness unknown", f: func() monitor.TempFile { f := dead; f.PIDAlive = monitor.Unknown; return f }()},
		{name: "too young", f: func() monitor.TempFile { f := dead; f.ModTime = now.Add(-time.Minute); return f }()},
		{name: "exactly min age", f: func() monitor.TempFile { f := dead; f.ModTime = now.Add(-minAge); return f }(), want: true},
		{name: "modified in the future", f: func() monitor.TempFile { f := dead; f.ModTime = now.Add(time.Hour); return f }()},
		{name: "manifest, no rewrite", f: manifest, want: true},
		{name: "manifest during a rewrite", f: manifest, in: monitor.Info{AOFRewriteInProgress: true}},
		{name: "manifest while a rewrite is scheduled", f: manifest, in: monitor.Info{AOFRewriteScheduled: true}},
		{name: "pid file while a rewrite is scheduled", f: dead, in: monitor.Info{AOFRewriteScheduled: true}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := StaleTemp(tc.f, tc.in, now, minAge); got != tc.want {
				t.Errorf("StaleTemp(%+v, %+v) = %v, want %v", tc.f, tc.in, got, tc.want)
			}
		})
	}
}

func TestExpectedSnapshot(t *testing.T) {
	t.Parallel()
	s := healthy()
	if got := ExpectedSnapshot(s); got != 50*mib {
		t.Errorf("with an RDB file: %d, want %d", got, 50*mib)
	}
	s.Host.RDBFileSize = -1
	if got := ExpectedSnapshot(s); got != 100*mib {
		t.Errorf("without an RDB file: %d, want used_memory %d", got, 100*mib)
	}
}

func TestReplicaNeverConnected(t *testing.T) {
	t.Parallel()
	s := healthy()
	s.Redis.Info.Role = "slave"
	s.Redis.Info.MasterLinkStatus = "down"
	s.Redis.Info.MasterLinkDownSinceSeconds = -1
	s.Redis.Info.UptimeSeconds = 60
	fs := Diagnose(s, History{}, DefaultThresholds(), nil)
	if len(fs) != 1 || fs[0].ID != IDReplicationLinkDown {
		t.Fatalf("want replication_link_down for a replica that never connected, got %+v", fs)
	}
	s.Redis.Info.UptimeSeconds = 2
	if fs := Diagnose(s, History{}, DefaultThresholds(), nil); len(fs) != 0 {
		t.Errorf("within the grace after start, want nothing, got %+v", fs)
	}
}
