package monitor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// The process reader: the Redis process's credentials, memory, task limit and
// its uid's tasks, huge pages and working directory, with the pure parsers of
// /proc/<pid>/status, limits and smaps_rollup.

// readProcessFacts fills r's process facts and returns the process's credentials
// (nil when unknown), which the dirs reader needs for writability.
func (h *HostSource) readProcessFacts(ctx context.Context, pid int, pidDir string, r *HostReading, errf errorf) *ProcStatus {
	cred, err := h.readProcess(ctx, pid, pidDir)
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
	return cred
}

// resolveAgainstCwd returns p as process pid sees it: an absolute p cleaned, a
// relative one (or "", the directory itself) joined to the process's working
// directory from procRoot. Redis chdir()s into its dir at start-up and opens
// relative names (dir, logfile) against it, so its cwd is the base, never the
// guardian's own.
func resolveAgainstCwd(procRoot string, pid int, p string) (string, error) {
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	cwd, err := os.Readlink(filepath.Join(procRootOr(procRoot), strconv.Itoa(pid), "cwd"))
	if err != nil {
		return "", err // a PathError naming the link: callers say what it was for
	}
	return filepath.Join(cwd, p), nil
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

// The pure parsers of the process files.

// ParseSmapsRollup returns the AnonHugePages of /proc/<pid>/smaps_rollup in bytes.
// It sums every AnonHugePages line, so the full /proc/<pid>/smaps works too.
func ParseSmapsRollup(s string) (int64, error) {
	var sum int64
	found := false
	for line := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(line, "AnonHugePages:")
		if !ok {
			continue
		}
		v, err := parseKB(rest)
		if err != nil {
			return -1, fmt.Errorf("parse smaps AnonHugePages: %w", err)
		}
		sum += v
		found = true
	}
	if !found {
		return -1, errors.New("parse smaps: no AnonHugePages line")
	}
	return sum, nil
}

// ProcStatus is what the host source needs from /proc/<pid>/status.
type ProcStatus struct {
	Name string
	// UID and GID are the effective ids and Groups the supplementary groups: they are
	// what the kernel checks when the process creates a file.
	UID    int
	GID    int
	Groups []int
	// VmRSS and VmSwap are in bytes, -1 when the line is absent (kernel threads).
	VmRSS  int64
	VmSwap int64
	// RealUID is the real uid: RLIMIT_NPROC counts the tasks of the real uid.
	RealUID int
	// Threads is the process's number of tasks.
	Threads int64
	// VmData and VmStk (bytes, -1 when absent) are the private writable memory a
	// fork must commit under vm.overcommit_memory 2.
	VmData int64
	VmStk  int64
}

// ParseProcStatus parses /proc/<pid>/status. Uid: and Gid: are required; the other
// fields are optional.
func ParseProcStatus(s string) (ProcStatus, error) {
	st := ProcStatus{UID: -1, GID: -1, VmRSS: -1, VmSwap: -1, RealUID: -1, VmData: -1, VmStk: -1}
	for line := range strings.Lines(s) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Name":
			st.Name = val
		case "Uid":
			st.UID, err = effectiveID(val)
			if err == nil {
				st.RealUID, err = strconv.Atoi(strings.Fields(val)[0])
			}
		case "Gid":
			st.GID, err = effectiveID(val)
		case "Groups":
			for _, f := range strings.Fields(val) {
				g, gerr := strconv.Atoi(f)
				if gerr != nil {
					err = gerr
					break
				}
				st.Groups = append(st.Groups, g)
			}
		case "VmRSS":
			st.VmRSS, err = parseKB(val)
		case "VmSwap":
			st.VmSwap, err = parseKB(val)
		case "VmData":
			st.VmData, err = parseKB(val)
		case "VmStk":
			st.VmStk, err = parseKB(val)
		case "Threads":
			st.Threads, err = strconv.ParseInt(val, 10, 64)
		}
		if err != nil {
			return ProcStatus{}, fmt.Errorf("parse status %s: %w", key, err)
		}
	}
	if st.UID < 0 || st.GID < 0 {
		return ProcStatus{}, errors.New("parse status: missing Uid or Gid line")
	}
	return st, nil
}

// effectiveID returns the second of the four ids (real, effective, saved, fs) of
// a Uid: or Gid: line.
func effectiveID(val string) (int, error) {
	f := strings.Fields(val)
	if len(f) < 2 {
		return -1, fmt.Errorf("want 4 ids, got %q", val)
	}
	id, err := strconv.Atoi(f[1])
	if err != nil {
		return -1, fmt.Errorf("effective id: %w", err)
	}
	if id < 0 {
		return -1, fmt.Errorf("effective id %d is negative", id)
	}
	return id, nil
}

// parseKB parses "1234 kB" into bytes.
func parseKB(s string) (int64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), " ")
	if u := strings.TrimSpace(unit); u != "kB" {
		return -1, fmt.Errorf("unit %q, want kB", u)
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return -1, err
	}
	if v < 0 || v > (1<<63-1)/1024 {
		return -1, fmt.Errorf("value %d kB out of range", v)
	}
	return v * 1024, nil
}

// ParseNprocLimit returns the soft "Max processes" limit from the text of
// /proc/<pid>/limits: 0 when unlimited.
func ParseNprocLimit(s string) (int64, error) {
	for line := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(line, "Max processes")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return -1, fmt.Errorf("parse limits: short Max processes line %q", strings.TrimSpace(line))
		}
		if f[0] == "unlimited" {
			return 0, nil
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || v < 0 {
			return -1, fmt.Errorf("parse limits: Max processes soft limit %q", f[0])
		}
		return v, nil
	}
	return -1, errors.New("parse limits: no Max processes line")
}
