package monitor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/common"
)

// This file holds the host source and its Read, which only orchestrates: each
// reading is a small reader in a file of its own, with the pure parsers of the
// kernel files it reads (hostproc.go: the process; hostdirs.go: the data and AOF
// dirs, the RDB file and the temp files; hostkernel.go: memory and kernel
// settings; hostcgroup.go and cgroupparse.go: the memory cgroup, v1 and v2).

// defaultProcRoot is where the kernel's process files are when no option says
// otherwise: the one place the default is set (HostSource, Collector, the temp-file
// scan).
const defaultProcRoot = "/proc"

// procRootOr returns root, or the default /proc when root is empty.
func procRootOr(root string) string {
	if root == "" {
		return defaultProcRoot
	}
	return root
}

// HostTarget says what to read: the pid from Redis's INFO (process_id) and the
// paths from its CONFIG (dir, appenddirname, dbfilename, appendfilename).
type HostTarget struct {
	PID        int
	Dir        string
	AOFDirName string
	DBFilename string
	// AppendFilename names the AOF temp files; empty means Redis's default.
	AppendFilename string
}

// HostOptions points the host source at the kernel's files; tests point them at a
// fake tree, and a guardian in a container at the host's mounts.
type HostOptions struct {
	ProcRoot string // default "/proc"
	SysRoot  string // default "/sys"
	// CacheTTL is how long readings that change rarely are kept (see
	// DefaultHostCacheTTL, the default); a negative value reads everything every time.
	CacheTTL time.Duration
}

// HostSource reads the facts of the host a local Redis runs on. Its only state is a
// cache of readings that change rarely, safe for concurrent use, so one HostSource
// may serve every instance (and shares that cache between them).
type HostSource struct {
	procRoot string
	sysRoot  string
	cache    *ttlCache

	// uidCounts are the last counts of tasks per uid (uidTasks), reused for
	// uidTTL while far from the limit; uidTTL is 0 when caching is off.
	uidMu     sync.Mutex
	uidCounts map[int]uidCount
	uidTTL    time.Duration
}

// NewHostSource returns a HostSource reading from opts' roots.
func NewHostSource(opts HostOptions) *HostSource {
	ttl := opts.CacheTTL
	if ttl == 0 {
		ttl = DefaultHostCacheTTL
	}
	h := &HostSource{procRoot: procRootOr(opts.ProcRoot), sysRoot: opts.SysRoot, cache: &ttlCache{ttl: ttl, now: time.Now}}
	if ttl > 0 {
		h.uidTTL = uidTaskFarTTL
	}
	if h.sysRoot == "" {
		h.sysRoot = "/sys"
	}
	return h
}

// unknownHost is a reading with nothing known: every number that has an "unknown"
// value (-1) carries it, so no consumer mistakes a zero for a measurement.
func unknownHost(reason string) HostReading {
	return HostReading{Reason: reason, RDBFileSize: -1, Overcommit: -1, PID: -1, ProcAnonHugePages: -1, ProcSwap: -1, ProcRSS: -1,
		NprocLimit: -1, NprocUID: -1, UIDTasks: -1, ProcCommit: -1, CommitLimit: -1, CommittedAS: -1}
}

// errorf adds one failed reading to a HostReading's Errors; every reader reports
// through one, so a failure never stops the readings after it.
type errorf func(format string, args ...any)

// Read returns what can be learned about the host of the Redis process t.PID. A
// reading that fails leaves its field at the unknown value and adds a line to
// Errors; Read never aborts half-way except when ctx is done. When the pid is not
// a Redis process on this host, Available is false and nothing else is read,
// because the paths and memory of this host would say nothing about that Redis.
func (h *HostSource) Read(ctx context.Context, t HostTarget) HostReading {
	r := unknownHost("")
	r.Available = true
	if t.PID > 0 {
		r.PID = t.PID
	}
	if ok, reason := h.checkProcess(t.PID); !ok {
		r.Available = false
		r.Reason = reason
		return r
	}
	errf := func(format string, args ...any) {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
	stopped := func() bool {
		if err := ctx.Err(); err != nil {
			errf("host: stopped: %v", err)
			return true
		}
		return false
	}
	pidDir := filepath.Join(h.procRoot, strconv.Itoa(t.PID))

	// Process facts first: the credentials are needed for writability.
	cred := h.readProcessFacts(ctx, t.PID, pidDir, &r, errf)
	if stopped() {
		return r
	}
	h.readDirs(ctx, t, cred, &r, errf)
	if stopped() {
		return r
	}
	h.readMemory(ctx, &r, errf)
	h.readKernel(&r, errf)
	var err error
	if r.Cgroup, err = h.readCgroup(pidDir); err != nil {
		errf("cgroup: %v", err)
	}
	return r
}

// env points gopsutil at this source's /proc and /sys (fixtures in tests).
func (h *HostSource) env(ctx context.Context) context.Context {
	return context.WithValue(ctx, common.EnvKey, common.EnvMap{common.HostProcEnvKey: h.procRoot, common.HostSysEnvKey: h.sysRoot})
}

// checkProcess tells whether pid is a Redis (or Valkey) server of this host's pid
// namespace. A wrong process would give every host reading (RSS, swap, cgroup,
// uid) from something else: the guardian itself when it runs as a sidecar without
// a shared pid namespace (Redis reports a pid that is ours here), or an unrelated
// process when Redis is remote or in a container.
func (h *HostSource) checkProcess(pid int) (bool, string) {
	notFound := fmt.Sprintf("redis process %d not found on this host (remote, or another pid namespace)", pid)
	if pid <= 0 {
		return false, notFound
	}
	if h.procRoot == defaultProcRoot && pid == os.Getpid() {
		return false, fmt.Sprintf("Redis reports pid %d, which is the guardian itself: Redis runs in another pid namespace (a sidecar needs a shared pid namespace for host checks)", pid)
	}
	pidDir := filepath.Join(h.procRoot, strconv.Itoa(pid))
	if _, err := os.Stat(pidDir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, notFound
		}
		return false, fmt.Sprintf("cannot check process %d: %v", pid, err)
	}
	// Another pid namespace than ours: the pid Redis reports names some other
	// process here. Unreadable links (no rights) leave the name check to decide.
	if own, err := os.Readlink(filepath.Join(h.procRoot, "self", "ns", "pid")); err == nil {
		if theirs, err := os.Readlink(filepath.Join(pidDir, "ns", "pid")); err == nil && theirs != own {
			return false, fmt.Sprintf("process %d is in another pid namespace (%s, ours is %s): not the Redis this guardian watches", pid, theirs, own)
		}
	}
	comm, commErr := os.ReadFile(filepath.Join(pidDir, "comm"))
	if commErr == nil && isServerName(strings.TrimSpace(string(comm))) {
		return true, ""
	}
	// The executable, for a server started under another name (comm is the name it
	// was started as; Debian's redis-server is a link to redis-check-rdb, so the
	// link's target alone would not do).
	if exe, err := os.Readlink(filepath.Join(pidDir, "exe")); err == nil && isServerName(filepath.Base(exe)) {
		return true, ""
	}
	// Redis rewrites its title ("redis-server *:6379"): the first word is the
	// program it was started as.
	cmdline, cmdErr := os.ReadFile(filepath.Join(pidDir, "cmdline"))
	if cmdErr == nil {
		argv0, _, _ := strings.Cut(strings.ReplaceAll(string(cmdline), "\x00", " "), " ")
		if isServerName(filepath.Base(argv0)) {
			return true, ""
		}
	}
	if commErr != nil && cmdErr != nil {
		return false, fmt.Sprintf("cannot tell what process %d is: %v", pid, commErr)
	}
	what := strings.TrimSpace(string(comm))
	if what == "" {
		what = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return false, fmt.Sprintf("process %d on this host is %q, not redis-server or valkey-server (remote Redis with a colliding pid, or another pid namespace)", pid, what)
}

// isServerName accepts the names a Redis or Valkey server process carries:
// redis-server, valkey-server, and builds named after them (redis-server-7.2).
// "redis-guardian", "redis-cli" or "redis-sentinel" are not servers of data.
func isServerName(s string) bool {
	s = strings.ToLower(s)
	return strings.HasPrefix(s, "redis-server") || strings.HasPrefix(s, "valkey-server")
}
