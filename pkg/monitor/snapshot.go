// Package monitor holds everything redis-guardian reads: a Redis source (INFO and
// CONFIG GET), a host source (disk, memory, kernel settings, cgroup limits of the
// Redis process) and a Redis log follower. Its output is a Snapshot, plain data that
// pkg/policy evaluates without any I/O.
package monitor

import (
	"time"
)

// Snapshot is everything known about one watched Redis at one moment. A source that
// failed records its error in its own reading instead of aborting the tick, so the
// policy can still reason about what did work.
type Snapshot struct {
	Instance string
	Addr     string
	Time     time.Time
	Redis    RedisReading
	Host     HostReading
	Log      LogReading
	// Fork is the host's fork slots (fork_budget), zero when not read.
	Fork ForkView
	// Peers are the other instances of this guardian process whose Redis runs
	// on this host, as their own loops last read them (oom_relief keeps their
	// maxmemory out of the room it raises into). Instances watched by another
	// guardian process are not among them.
	Peers []PeerMemory
}

// PeerMemory is the memory of another Redis of this host, as the instance of
// the same guardian process that watches it last read it.
type PeerMemory struct {
	Name string
	// MaxMemory is its maxmemory (0: no limit); UsedMemory its last used_memory.
	MaxMemory  int64
	UsedMemory int64
	// CgroupLimit is the cgroup that sets its memory limit (CgroupReading's
	// LimitPath), "" when none: a peer under the same limit shares its room.
	CgroupLimit string
}

// ErrKind classifies why Redis could not be read, because each kind has a different
// fix: a down server, a wrong password and a renamed command are not the same page.
type ErrKind string

// The kinds of Redis errors the policy distinguishes.
const (
	ErrNone               ErrKind = ""
	ErrUnreachable        ErrKind = "unreachable"
	ErrAuth               ErrKind = "auth"
	ErrCommandUnavailable ErrKind = "command_unavailable"
	// ErrReplyInvalid: the reply broke the bounds or framing of a reply
	// (ErrInvalidReply), or did not answer what was asked: whatever answers is
	// not a sane Redis.
	ErrReplyInvalid ErrKind = "reply_invalid"
	ErrOther        ErrKind = "other"
)

// RedisReading is what one tick learned from Redis itself.
type RedisReading struct {
	// Err is set when INFO failed; Info is then the zero value.
	Err     error
	ErrKind ErrKind
	Info    Info
	Latency time.Duration
	// InfoTime is when Info's sections other than persistence (and replication,
	// for a replica or a master with replicas) were last read: a tick asks for
	// those sections only every RedisOptions.InfoRefresh. InfoFull says this
	// reading asked for all of them.
	InfoTime time.Time
	InfoFull bool
	// MemoryTime is when INFO memory was last read: at a full read, and at a
	// light one too while memory is watched (MemoryWatched).
	MemoryTime time.Time

	// Config is the last CONFIG GET result; it is refreshed rarely, so ConfigTime
	// says how old it is. ConfigErr is set when CONFIG GET failed (renamed command,
	// ACL without +config|get); Config then holds what is known, maybe nothing.
	Config        RedisConfig
	ConfigTime    time.Time
	ConfigErr     error
	ConfigErrKind ErrKind

	// Clients are the clients with the largest output buffers (TopClients, at
	// most TopClientsN), from the last CLIENT LIST: it runs only while client
	// buffers hold a large share of memory (ClientBuffersLarge), only on a full
	// INFO read and at most once every ClientListEvery, and its result is kept
	// until the share falls. ClientsTime is when it ran, zero when it has not;
	// ClientsErr is set when it failed (an ACL user without +client|list).
	Clients     []Client
	ClientsTime time.Time
	ClientsErr  error

	// File is what Redis's own config file (INFO config_file) says about the
	// settings the guardian may hold; empty when Redis has no file or it is not
	// on this host.
	File ConfigFileReading
}

// Tri is a three-valued answer for host facts that may not be knowable.
type Tri int

// Values of Tri.
const (
	Unknown Tri = iota
	Yes
	No
)

func (t Tri) String() string {
	switch t {
	case Yes:
		return "yes"
	case No:
		return "no"
	default:
		return "unknown"
	}
}

// HostReading is what one tick learned from the host Redis runs on. It is only
// filled when Redis is local; otherwise Available is false and Reason says why,
// so nothing is guessed.
type HostReading struct {
	Available bool
	Reason    string
	// Disabled is set when the operator turned host checks off; nothing is then
	// reported about the host, not even that it is unavailable.
	Disabled bool

	// DataDir is Redis's `dir`; AOFDir is dir/appenddirname (7.0+) when it exists.
	DataDir DirReading
	AOFDir  DirReading

	// RDBFileSize is the size of dir/dbfilename, -1 when absent or unknown. It is the
	// best estimate of what the next snapshot needs on disk.
	RDBFileSize int64

	MemTotal     uint64
	MemAvailable uint64
	SwapTotal    uint64
	SwapFree     uint64

	// Overcommit is vm.overcommit_memory (0, 1, 2), -1 when unknown.
	Overcommit int
	// THP is the active mode of /sys/kernel/mm/transparent_hugepage/enabled
	// ("always", "madvise", "never"), empty when unknown.
	THP string

	// Process facts of the Redis server (pid from INFO). -1 when unknown.
	PID               int
	ProcAnonHugePages int64
	ProcSwap          int64
	ProcRSS           int64

	Cgroup CgroupReading

	// NprocLimit is the Redis process's soft RLIMIT_NPROC (0: unlimited, -1:
	// unknown). UIDTasks is how many tasks its real uid NprocUID has (Linux counts
	// threads): a fork fails with EAGAIN once they reach the limit. It is counted
	// only when the limit is finite and the uid is not root (exempt), else -1.
	NprocLimit int64
	NprocUID   int
	UIDTasks   int64
	// ProcCommit is what a fork of Redis must commit under vm.overcommit_memory 2
	// (its private writable memory: VmData + VmStk), -1 when unknown.
	ProcCommit int64
	// CommitLimit and CommittedAS are /proc/meminfo's, read only under
	// vm.overcommit_memory 2 (a fork fails with ENOMEM when the child's commit
	// does not fit between them), else -1.
	CommitLimit int64
	CommittedAS int64

	// TempFiles are Redis's own temp files found in dir and the AOF dir.
	TempFiles []TempFile

	// Errors lists the readings that failed, e.g. "overcommit: permission denied".
	Errors []string
}

// DirReading describes a directory Redis writes to.
type DirReading struct {
	Path        string
	Known       bool // false when the path is unknown or could not be read
	Total       uint64
	Free        uint64 // bytes available to unprivileged users
	UsedPercent float64
	InodesTotal uint64
	InodesFree  uint64
	// Writable tells whether the Redis process's uid/gids may create files here.
	Writable       Tri
	WritableReason string
}

// CgroupReading is the memory state of the Redis process's memory cgroup, on
// cgroup v1 or v2: the same facts under other file names.
type CgroupReading struct {
	Known bool
	// Version is the cgroup version holding the memory controller, 1 or 2; 0
	// when unknown.
	Version int
	// Path is the process's cgroup in that hierarchy, e.g.
	// /system.slice/redis-server.service.
	Path string
	// MemoryMax is the tightest limit from Path up to the root, in bytes (v2
	// memory.max, v1 memory.limit_in_bytes), 0 when there is none ("max", or
	// v1's huge unlimited value). LimitPath is the cgroup that sets it.
	MemoryMax uint64
	LimitPath string
	// MemoryCurrent is the usage charged to the cgroup (v2 memory.current, v1
	// memory.usage_in_bytes), page cache included.
	MemoryCurrent uint64
	// WorkingSet is MemoryCurrent minus the inactive file pages (v2
	// inactive_file, v1 total_inactive_file of memory.stat), as the kubelet
	// counts it: what the kernel cannot cheaply drop when the limit is reached.
	WorkingSet uint64
	// OOMKill counts the processes the OOM killer took in the cgroup since it was
	// made (oom_kill of v2 memory.events, of v1 memory.oom_control on kernel
	// 4.13+): a counter, so only a rise means something.
	OOMKill uint64
	// Failcnt counts the times usage hit the limit (v1 memory.failcnt, v2
	// memory.events max).
	Failcnt uint64
}

// TempFileKind names which Redis code path wrote a temp file.
type TempFileKind string

// Temp file kinds, per Redis's naming (see shared/docs/redis-facts.md).
const (
	TempBgsave      TempFileKind = "bgsave"       // temp-<childpid>.rdb, or temp-<mainpid>.rdb for SAVE
	TempReplSync    TempFileKind = "repl_sync"    // temp-<unixtime>.<mainpid>.rdb
	TempRewriteBg   TempFileKind = "rewrite_bg"   // temp-rewriteaof-bg-<pid>.aof
	TempRewrite     TempFileKind = "rewrite"      // temp-rewriteaof-<pid>.aof
	TempAOFIncr     TempFileKind = "aof_incr"     // appendonlydir/temp-<appendfilename>.incr
	TempAOFManifest TempFileKind = "aof_manifest" // appendonlydir/temp-<appendfilename>.manifest
)

// TempFile is one Redis temp file on disk.
type TempFile struct {
	Path    string
	Kind    TempFileKind
	Size    int64
	ModTime time.Time
	// PID is the pid embedded in the name, 0 when the name carries none.
	PID int
	// PIDAlive is Yes when a process with that pid exists.
	PIDAlive Tri
}

// LogKind is a class of Redis log line the guardian acts on.
type LogKind string

// The log lines recognised (see shared/docs/redis-facts.md).
const (
	LogForkFailed         LogKind = "fork_failed"          // Can't save in background: fork: <reason>
	LogRDBWriteError      LogKind = "rdb_write_error"      // Write error saving DB on disk: <reason>
	LogRDBOpenFailed      LogKind = "rdb_open_failed"      // Failed opening the temp RDB file ... (in server.c/rdb.c): <reason>
	LogBgsaveError        LogKind = "bgsave_error"         // Background saving error
	LogBgsaveSignal       LogKind = "bgsave_signal"        // Background saving terminated by signal <n>
	LogBgsaveOK           LogKind = "bgsave_ok"            // Background saving terminated with success
	LogAOFRewriteError    LogKind = "aof_rewrite_error"    // Background AOF rewrite terminated with error
	LogAOFRewriteLimit    LogKind = "aof_rewrite_limit"    // Background AOF rewrite has repeatedly failed
	LogAOFWriteError      LogKind = "aof_write_error"      // Error writing to the AOF file: <reason>
	LogAOFWriteSolved     LogKind = "aof_write_solved"     // AOF write error looks solved, Redis can write again.
	LogAOFFsyncSlow       LogKind = "aof_fsync_slow"       // Asynchronous AOF fsync is taking too long
	LogOutputBufferClosed LogKind = "output_buffer_closed" // scheduled to be closed ASAP for overcoming of output buffer limits
)

// Wakes reports whether a line of this kind wakes the watch loop at once: only
// the lines a remedy acts on (a save failed or succeeded, the AOF cannot be
// written). The others (slow fsync, output-buffer disconnections, the rewrite
// limiter) are reported at the next tick: a replica in a sync loop logs thousands
// of output-buffer lines a second, and each must not cost Redis an INFO.
func (k LogKind) Wakes() bool {
	switch k {
	case LogForkFailed, LogRDBWriteError, LogRDBOpenFailed, LogBgsaveError, LogBgsaveSignal, LogBgsaveOK,
		LogAOFRewriteError, LogAOFWriteError, LogAOFWriteSolved:
		return true
	}
	return false
}

// LogEvent is one recognised Redis log line.
type LogEvent struct {
	Kind LogKind
	// Cause is the reason text Redis printed, e.g. "Resource temporarily unavailable",
	// "No space left on device", "signal 9". Empty when the line carries none.
	Cause string
	// Time is the timestamp in the line, or when it was read if the line had none.
	Time time.Time
	Line string
}

// LogReading is the state of the Redis log follower for one instance.
type LogReading struct {
	Source LogSource
	Path   string
	// Err is set when the file cannot be followed (missing, permission denied).
	Err error
	// Last holds the newest event of each kind seen so far.
	Last map[LogKind]LogEvent
}

// LogSource says where Redis writes its log, which decides how fast a failure is
// seen: a followed file wakes the loop at once, anything else waits for a tick.
type LogSource string

// Log sources.
const (
	LogFile        LogSource = "file"
	LogStdout      LogSource = "stdout" // under systemd the journal; with daemonize yes, /dev/null
	LogSyslog      LogSource = "syslog"
	LogUnavailable LogSource = "unavailable"
)

// HostChecks says whether the host of a Redis is read.
type HostChecks string

// Host check modes.
const (
	HostChecksAuto HostChecks = "auto" // when the address is local
	HostChecksOn   HostChecks = "on"
	HostChecksOff  HostChecks = "off"
)
