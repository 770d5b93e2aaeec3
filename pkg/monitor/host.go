package monitor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
	"golang.org/x/sys/unix"
)

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
	h := &HostSource{procRoot: opts.ProcRoot, sysRoot: opts.SysRoot, cache: &ttlCache{ttl: ttl, now: time.Now}}
	if ttl > 0 {
		h.uidTTL = uidTaskFarTTL
	}
	if h.procRoot == "" {
		h.procRoot = "/proc"
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
	cred, err := h.readProcess(ctx, t.PID, pidDir)
	if err != nil {
		errf("process: %v", err)
	}
	if cred != nil {
		r.ProcRSS, r.ProcSwap = cred.VmRSS, cred.VmSwap
		if cred.VmData >= 0 {
			r.ProcCommit = cred.VmData + max(cred.VmStk, 0)
		}
		r.NprocUID = cred.RealUID
	}
	// The fork's task limit: read each tick, since prlimit(1) changes it on a
	// running process; the uid's tasks are counted only when it can bite.
	if b, err := os.ReadFile(filepath.Join(pidDir, "limits")); err != nil {
		errf("limits: %v", err)
	} else if v, err := ParseNprocLimit(string(b)); err != nil {
		errf("limits: %v", err)
	} else {
		r.NprocLimit = v
		if v > 0 && r.NprocUID > 0 {
			if n, err := h.uidTasks(r.NprocUID, v); err != nil {
				errf("tasks of uid %d: %v", r.NprocUID, err)
			} else {
				r.UIDTasks = n
			}
		}
	}
	// smaps_rollup makes the kernel walk every mapping of the process (half of a
	// tick's cost when read each time); huge page use moves slowly, so it is cached.
	if v, err := cached(h.cache, "smaps "+pidDir, func() (int64, error) {
		b, err := os.ReadFile(filepath.Join(pidDir, "smaps_rollup"))
		if err != nil {
			return -1, err
		}
		return ParseSmapsRollup(string(b))
	}); err != nil {
		errf("smaps_rollup: %v", err)
	} else {
		r.ProcAnonHugePages = v
	}
	if stopped() {
		return r
	}

	// Directories.
	dir := t.Dir
	switch {
	case dir == "":
		// CONFIG GET may be renamed or denied; Redis chdir()s into its dir, so its
		// working directory is the same answer.
		cwd, err := os.Readlink(filepath.Join(pidDir, "cwd"))
		if err != nil {
			errf("data dir: not known from config, and the process's cwd: %v", err)
		}
		dir = cwd
	case !filepath.IsAbs(dir):
		// Redis resolves a relative dir against its own working directory.
		cwd, err := os.Readlink(filepath.Join(pidDir, "cwd"))
		if err != nil {
			errf("data dir: resolve relative dir %q: %v", dir, err)
			dir = ""
		} else {
			dir = filepath.Join(cwd, dir)
		}
	default:
		dir = filepath.Clean(dir)
	}
	if dir != "" {
		var err error
		r.DataDir, err = readDirReading(ctx, dir, cred, h.ownerName)
		if err != nil {
			errf("data dir: %v", err)
		}
	}
	aofDir := ""
	if dir != "" && t.AOFDirName != "" {
		p := filepath.Join(dir, t.AOFDirName)
		if _, err := os.Stat(p); err == nil {
			aofDir = p
			r.AOFDir, err = readDirReading(ctx, p, cred, h.ownerName)
			if err != nil {
				errf("aof dir: %v", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			errf("aof dir: %v", err)
		}
	}
	if dir != "" && t.DBFilename != "" {
		fi, err := os.Stat(filepath.Join(dir, t.DBFilename))
		switch {
		case err == nil && fi.Mode().IsRegular():
			r.RDBFileSize = fi.Size()
		case err == nil:
			errf("rdb file: %s is not a regular file", filepath.Join(dir, t.DBFilename))
		case !errors.Is(err, fs.ErrNotExist):
			errf("rdb file: %v", err)
		}
	}
	if dir != "" {
		files, err := ScanTempFiles(dir, aofDir, t.AppendFilename, h.procRoot)
		r.TempFiles = files
		if err != nil {
			errf("temp files: %v", err)
		}
	}
	if stopped() {
		return r
	}

	// Memory and swap, from gopsutil behind the host cache: VirtualMemory splits
	// every line of meminfo into fresh strings (two thirds of a tick's allocations
	// when read each tick), and fork headroom is a slow-moving warning.
	if m, err := cached(h.cache, "memory", func() (*mem.VirtualMemoryStat, error) {
		return mem.VirtualMemoryWithContext(h.env(ctx))
	}); err != nil {
		errf("memory: %v", err)
	} else {
		r.MemTotal, r.MemAvailable, r.SwapTotal, r.SwapFree = m.Total, m.Available, m.SwapTotal, m.SwapFree
	}

	// Kernel settings: changed by an operator now and then, so cached.
	if v, err := cached(h.cache, "overcommit", func() (int, error) {
		b, err := os.ReadFile(filepath.Join(h.procRoot, "sys", "vm", "overcommit_memory"))
		if err != nil {
			return -1, err
		}
		return ParseOvercommit(string(b))
	}); err != nil {
		errf("overcommit: %v", err)
	} else {
		r.Overcommit = v
	}
	if v, err := cached(h.cache, "thp", func() (string, error) {
		b, err := os.ReadFile(filepath.Join(h.sysRoot, "kernel", "mm", "transparent_hugepage", "enabled"))
		if err != nil {
			return "", err
		}
		return ParseTHP(string(b))
	}); err != nil {
		errf("thp: %v", err)
	} else {
		r.THP = v
	}

	// Under strict overcommit a fork fails with ENOMEM when the child's commit does
	// not fit under CommitLimit: both move with every allocation on the host, so
	// they are read each tick, but only in that mode.
	if r.Overcommit == 2 {
		if b, err := os.ReadFile(filepath.Join(h.procRoot, "meminfo")); err != nil {
			errf("meminfo: %v", err)
		} else if c, err := ParseCommit(string(b)); err != nil {
			errf("meminfo: %v", err)
		} else {
			r.CommitLimit, r.CommittedAS = c.Limit, c.Committed
		}
	}

	r.Cgroup, err = h.readCgroup(pidDir)
	if err != nil {
		errf("cgroup: %v", err)
	}
	return r
}

// env points gopsutil at this source's /proc and /sys (fixtures in tests).
func (h *HostSource) env(ctx context.Context) context.Context {
	return context.WithValue(ctx, common.EnvKey, common.EnvMap{common.HostProcEnvKey: h.procRoot, common.HostSysEnvKey: h.sysRoot})
}

// procCreds are the Redis process's name and credentials: they change only with
// the process, so they are read through the host cache.
type procCreds struct {
	name     string
	uid, gid int
	groups   []int
}

// readProcess reads the Redis process's credentials and memory: uids, gids,
// supplementary groups and name through gopsutil (cached: a running process keeps
// them), RSS through gopsutil every tick, and VmSwap with our own parser (gopsutil
// reads it but has no accessor for it).
func (h *HostSource) readProcess(ctx context.Context, pid int, pidDir string) (*ProcStatus, error) {
	ectx := h.env(ctx)
	// Not NewProcess: checkProcess has found the process in our /proc already, and
	// NewProcess would signal the pid, which is no check of a /proc fixture.
	p := &process.Process{Pid: int32(pid)}
	creds, err := cached(h.cache, "creds "+pidDir, func() (procCreds, error) {
		uids, err := p.UidsWithContext(ectx)
		if err != nil || len(uids) < 2 {
			return procCreds{}, fmt.Errorf("uids of process %d: %v", pid, err)
		}
		gids, err := p.GidsWithContext(ectx)
		if err != nil || len(gids) < 2 {
			return procCreds{}, fmt.Errorf("gids of process %d: %v", pid, err)
		}
		groups, err := p.GroupsWithContext(ectx)
		if err != nil {
			return procCreds{}, fmt.Errorf("groups of process %d: %w", pid, err)
		}
		// The effective ids are what the kernel checks when the process creates a file.
		c := procCreds{uid: int(uids[1]), gid: int(gids[1])}
		for _, g := range groups {
			c.groups = append(c.groups, int(g))
		}
		c.name, _ = p.NameWithContext(ectx)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	st := &ProcStatus{Name: creds.name, UID: creds.uid, GID: creds.gid, Groups: creds.groups, VmRSS: -1, VmSwap: -1}
	if m, err := p.MemoryInfoWithContext(ectx); err == nil {
		st.VmRSS = int64(m.RSS)
	}
	if b, err := os.ReadFile(filepath.Join(pidDir, "status")); err == nil {
		if own, err := ParseProcStatus(string(b)); err == nil {
			st.VmSwap, st.RealUID, st.Threads, st.VmData, st.VmStk = own.VmSwap, own.RealUID, own.Threads, own.VmData, own.VmStk
		}
	}
	return st, nil
}

// uidTaskFarTTL is how long a count of a uid's tasks is reused while it is below
// half of the limit: counting walks every process on the host, and a uid far
// from its limit does not reach it between two ticks. Nearer, it is counted at
// every read. The limit itself is read at every tick, so a lowered limit is
// compared with the count at once.
const uidTaskFarTTL = 30 * time.Second

type uidCount struct {
	n  int64
	at time.Time
}

// uidTasks returns the tasks of uid, counted again unless a count younger than
// uidTaskFarTTL showed less than half of limit. One count serves every instance
// that runs as uid.
func (h *HostSource) uidTasks(uid int, limit int64) (int64, error) {
	now := time.Now()
	h.uidMu.Lock()
	c, ok := h.uidCounts[uid]
	h.uidMu.Unlock()
	if ok && c.n*2 < limit && now.Sub(c.at) >= 0 && now.Sub(c.at) < h.uidTTL {
		return c.n, nil
	}
	n, err := countUIDTasks(h.procRoot, uid)
	if err != nil {
		return -1, err
	}
	h.uidMu.Lock()
	if h.uidCounts == nil {
		h.uidCounts = map[int]uidCount{}
	}
	h.uidCounts[uid] = uidCount{n: n, at: now}
	h.uidMu.Unlock()
	return n, nil
}

// countUIDTasks counts the tasks (threads) of every process whose real uid is
// uid, as the kernel does for RLIMIT_NPROC. Processes that vanish meanwhile are
// left out.
func countUIDTasks(procRoot string, uid int) (int64, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return -1, err
	}
	var n int64
	for _, e := range ents {
		name := e.Name()
		if name == "" || name[0] < '1' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, name, "status"))
		if err != nil {
			continue
		}
		ruid, threads, ok := uidThreads(string(b))
		if ok && ruid == uid {
			n += threads
		}
	}
	return n, nil
}

// uidThreads reads the real uid and the thread count from a status text without
// parsing the rest: it runs for every process on the host.
func uidThreads(s string) (uid int, threads int64, ok bool) {
	uid = -1
	for line := range strings.Lines(s) {
		switch {
		case strings.HasPrefix(line, "Uid:"):
			f := strings.Fields(line[4:])
			if len(f) == 0 {
				return -1, 0, false
			}
			v, err := strconv.Atoi(f[0])
			if err != nil {
				return -1, 0, false
			}
			uid = v
		case strings.HasPrefix(line, "Threads:"):
			v, err := strconv.ParseInt(strings.TrimSpace(line[8:]), 10, 64)
			if err != nil {
				return -1, 0, false
			}
			return uid, v, uid >= 0
		}
	}
	return -1, 0, false
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
	if h.procRoot == "/proc" && pid == os.Getpid() {
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

// readDirReading reads the disk usage and writability of a directory. A DirReading with
// Known=false comes back with the error.
func readDirReading(ctx context.Context, path string, cred *ProcStatus, owner func(uid, gid int) string) (DirReading, error) {
	d := DirReading{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return d, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.IsDir() {
		return d, fmt.Errorf("%s is not a directory", path)
	}
	// One statfs gives usage and the read-only flag (gopsutil's disk.Usage did a
	// second one, and allocated, for the same numbers).
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return d, fmt.Errorf("disk usage of %s: statfs: %w", path, err)
	}
	d.Known = true
	d.Total, d.Free, d.UsedPercent = statfsUsage(sfs)
	d.InodesTotal, d.InodesFree = sfs.Files, sfs.Ffree

	readOnly := sfs.Flags&unix.ST_RDONLY != 0
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		d.WritableReason = "owner of " + path + " unknown"
		return d, nil
	}
	perm := dirPerm{path: path, uid: int(st.Uid), gid: int(st.Gid), mode: fi.Mode(), owner: owner(int(st.Uid), int(st.Gid))}
	d.Writable, d.WritableReason = dirWritable(perm, cred, readOnly)
	return d, nil
}

// statfsUsage returns the size and the space free to unprivileged users, and the
// used percentage as df shows it: used / (used + available), so the blocks reserved
// for root count neither as free nor as used.
func statfsUsage(s unix.Statfs_t) (total, free uint64, usedPercent float64) {
	bsize := uint64(s.Bsize)
	total = s.Blocks * bsize
	free = s.Bavail * bsize
	used := (s.Blocks - s.Bfree) * bsize
	if used+free > 0 {
		usedPercent = float64(used) / float64(used+free) * 100
	}
	return total, free, usedPercent
}

// dirPerm is what writability depends on, apart from the process.
type dirPerm struct {
	path     string
	uid, gid int
	mode     fs.FileMode
	// owner is "user:group" by name; empty means look the names up.
	owner string
}

// dirWritable decides whether a process with cred may create files in a directory.
// It applies the classic permission check: the owner class when the uid owns the
// directory, else the group class when any of its gids matches, else other; write
// and search (w+x) are both needed. It ignores ACLs and capabilities other than
// root's, and does not check the parents: Redis chdir()s into dir at start-up and
// writes relative names, so the parents' modes no longer matter to it.
func dirWritable(d dirPerm, cred *ProcStatus, readOnly bool) (Tri, string) {
	owner := d.owner
	if owner == "" {
		owner = ownerName(d.uid, d.gid)
	}
	desc := fmt.Sprintf("dir %s is owned by %s mode %04o", d.path, owner, d.mode.Perm())
	if readOnly {
		return No, desc + " on a read-only filesystem"
	}
	if cred == nil {
		return Unknown, desc + "; the redis process's uid is unknown"
	}
	who := fmt.Sprintf("redis process runs as uid %d gid %d", cred.UID, cred.GID)
	if extra := slices.DeleteFunc(slices.Clone(cred.Groups), func(g int) bool { return g == cred.GID }); len(extra) > 0 {
		who += fmt.Sprintf(" groups %s", joinIDs(extra))
	}
	if cred.UID == 0 {
		return Yes, desc + "; redis process runs as root"
	}
	perm := d.mode.Perm()
	var need, class fs.FileMode
	switch {
	case cred.UID == d.uid:
		need, class = 0o300, 0o700
	case cred.GID == d.gid || slices.Contains(cred.Groups, d.gid):
		need, class = 0o030, 0o070
	default:
		need, class = 0o003, 0o007
	}
	if perm&class&need == need {
		return Yes, desc + "; " + who
	}
	return No, desc + "; " + who + ", which may not create files there"
}

// ownerName is "user:group" by name where known.
func ownerName(uid, gid int) string {
	return idName(uid, true) + ":" + idName(gid, false)
}

// ownerName is the cached ownerName: looking names up parses /etc/passwd and
// /etc/group (or asks NSS) on every call.
func (h *HostSource) ownerName(uid, gid int) string {
	s, _ := cached(h.cache, "owner "+strconv.Itoa(uid)+":"+strconv.Itoa(gid), func() (string, error) {
		return ownerName(uid, gid), nil
	})
	return s
}

// idName shows a uid or gid by name when the host's user database knows it. Redis
// and the guardian share that database when Redis is local.
func idName(id int, isUser bool) string {
	s := strconv.Itoa(id)
	if isUser {
		if u, err := user.LookupId(s); err == nil {
			return u.Username
		}
	} else if g, err := user.LookupGroupId(s); err == nil {
		return g.Name
	}
	return s
}

func joinIDs(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// readCgroup reads the cgroup v2 memory state of the process. Memory files exist
// only where the memory controller is enabled, so it uses the nearest cgroup (the
// process's own or an ancestor) that has memory.current, and reports as MemoryMax
// the smallest memory.max from there up to the root: any ancestor's limit caps
// the whole subtree.
func (h *HostSource) readCgroup(pidDir string) (CgroupReading, error) {
	// Where the process's memory accounting lives only changes when Redis is moved
	// to another cgroup: resolving it is cached, reading the counters is not.
	cg, err := cached(h.cache, "cgroup "+pidDir, func() (cgroupLevels, error) { return h.resolveCgroup(pidDir) })
	c := CgroupReading{Path: cg.path}
	if err != nil {
		return c, err
	}
	if len(cg.levels) == 0 {
		// The root cgroup has no memory files and no limit.
		c.Known = true
		return c, nil
	}
	levels := cg.levels
	var errs []error
	b, err := os.ReadFile(filepath.Join(levels[0], "memory.current"))
	if err == nil {
		c.MemoryCurrent, err = ParseCgroupMemoryCurrent(string(b))
	}
	if err != nil {
		errs = append(errs, err)
	}
	b, err = os.ReadFile(filepath.Join(levels[0], "memory.events"))
	if err == nil {
		var ev map[string]uint64
		if ev, err = ParseCgroupMemoryEvents(string(b)); err == nil {
			c.OOMKill = ev["oom_kill"]
		}
	}
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range levels {
		b, err := os.ReadFile(filepath.Join(l, "memory.max"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the root, or a level without the controller
		}
		var limit uint64
		if err == nil {
			limit, err = ParseCgroupMemoryMax(string(b))
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if limit != 0 && (c.MemoryMax == 0 || limit < c.MemoryMax) {
			c.MemoryMax = limit
		}
	}
	c.Known = len(errs) == 0
	return c, errors.Join(errs...)
}

// cgroupLevels is a process's cgroup v2 path and the directories whose memory files
// apply to it: the nearest with memory.current first, then its ancestors up to the
// root. No levels (and no error) means the root cgroup.
type cgroupLevels struct {
	path   string
	levels []string
}

func (h *HostSource) resolveCgroup(pidDir string) (cgroupLevels, error) {
	var cg cgroupLevels
	b, err := os.ReadFile(filepath.Join(pidDir, "cgroup"))
	if err != nil {
		return cg, fmt.Errorf("read process cgroup: %w", err)
	}
	p, err := ParseCgroup(string(b))
	if err != nil {
		return cg, err
	}
	cg.path = p
	// Inside a cgroup namespace, a cgroup outside it shows as "/../x"; joining that
	// would leave the mount.
	if slices.Contains(strings.Split(p, "/"), "..") {
		return cg, fmt.Errorf("cgroup %s is outside this cgroup namespace", p)
	}
	mount := filepath.Join(h.sysRoot, "fs", "cgroup")
	var levels []string // from the process's cgroup up to the root
	for rel := filepath.Clean(p); ; rel = filepath.Dir(rel) {
		levels = append(levels, filepath.Join(mount, rel))
		if rel == "/" {
			break
		}
	}
	for i, l := range levels {
		if _, err := os.Stat(filepath.Join(l, "memory.current")); err == nil {
			cg.levels = levels[i:]
			return cg, nil
		}
	}
	if p == "/" {
		return cg, nil
	}
	return cg, fmt.Errorf("no memory controller for cgroup %s under %s", p, mount)
}
