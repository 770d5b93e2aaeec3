package monitor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file holds the pure parsers of the host source: each takes the text of one
// kernel file and returns typed values, so they can be tested on captured fixtures
// without a /proc or /sys.

// ParseTHP returns the active mode of /sys/kernel/mm/transparent_hugepage/enabled,
// the word in brackets: "always [madvise] never" gives "madvise".
func ParseTHP(s string) (string, error) {
	for _, f := range strings.Fields(s) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return f[1 : len(f)-1], nil
		}
	}
	return "", fmt.Errorf("parse transparent_hugepage mode %q: no [selected] mode", strings.TrimSpace(s))
}

// ParseOvercommit returns vm.overcommit_memory (0, 1 or 2) from the text of
// /proc/sys/vm/overcommit_memory.
func ParseOvercommit(s string) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1, fmt.Errorf("parse overcommit_memory: %w", err)
	}
	if v < 0 || v > 2 {
		return -1, fmt.Errorf("parse overcommit_memory: unexpected value %d", v)
	}
	return v, nil
}

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

// ErrCgroupV1 is returned by ParseCgroup when the memory controller is mounted as
// cgroup v1 (legacy or hybrid hierarchy): its files differ and are not read.
var ErrCgroupV1 = errors.New("cgroup v1 not supported")

// ParseCgroup returns the cgroup v2 path of a process from /proc/<pid>/cgroup, the
// path of its "0::" line. It returns ErrCgroupV1 when a v1 hierarchy holds the
// memory controller, because then the v2 path carries no memory accounting.
func ParseCgroup(s string) (string, error) {
	path, found := "", false
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			return "", fmt.Errorf("parse cgroup line %q: want id:controllers:path", line)
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok {
			return "", fmt.Errorf("parse cgroup line %q: want id:controllers:path", line)
		}
		if id == "0" && controllers == "" {
			path, found = p, true
			continue
		}
		for c := range strings.SplitSeq(controllers, ",") {
			if c == "memory" {
				return "", ErrCgroupV1
			}
		}
	}
	if !found {
		return "", ErrCgroupV1
	}
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("parse cgroup: path %q is not absolute", path)
	}
	return path, nil
}

// ParseCgroupMemoryMax parses memory.max; "max" (no limit) gives 0.
func ParseCgroupMemoryMax(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse memory.max: %w", err)
	}
	return v, nil
}

// ParseCgroupMemoryCurrent parses memory.current, in bytes.
func ParseCgroupMemoryCurrent(s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse memory.current: %w", err)
	}
	return v, nil
}

// ParseCgroupMemoryEvents parses memory.events ("oom_kill 2" lines) into a map, so
// the caller picks the counters it needs and new kernel counters do no harm.
func ParseCgroupMemoryEvents(s string) (map[string]uint64, error) {
	m := make(map[string]uint64)
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("parse memory.events line %q: want key value", strings.TrimSpace(line))
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse memory.events %s: %w", f[0], err)
		}
		m[f[0]] = v
	}
	return m, nil
}

// ParseTempFileName recognises the temp files Redis writes in its `dir`, by their
// exact names: temp-<pid>.rdb (BGSAVE child, or SAVE), temp-<unixtime>.<pid>.rdb
// (replica full sync, pid of the main process), temp-rewriteaof-bg-<pid>.aof and
// temp-rewriteaof-<pid>.aof. Numbers are what Redis prints with %d: digits only,
// no sign, no leading zero. Anything else, including a name with a path separator,
// is rejected, because a match may end up deleted. The AOF directory's temp files
// depend on appendfilename and are matched by ScanTempFiles.
func ParseTempFileName(name string) (kind TempFileKind, pid int, ok bool) {
	if strings.ContainsAny(name, "/\\\x00") {
		return "", 0, false
	}
	if rest, found := strings.CutPrefix(name, "temp-rewriteaof-bg-"); found {
		if num, found := strings.CutSuffix(rest, ".aof"); found {
			if p, ok := parsePID(num); ok {
				return TempRewriteBg, p, true
			}
		}
		return "", 0, false
	}
	if rest, found := strings.CutPrefix(name, "temp-rewriteaof-"); found {
		if num, found := strings.CutSuffix(rest, ".aof"); found {
			if p, ok := parsePID(num); ok {
				return TempRewrite, p, true
			}
		}
		return "", 0, false
	}
	rest, found := strings.CutPrefix(name, "temp-")
	if !found {
		return "", 0, false
	}
	nums, found := strings.CutSuffix(rest, ".rdb")
	if !found {
		return "", 0, false
	}
	if first, second, two := strings.Cut(nums, "."); two {
		if _, ok := parseDecimal(first); !ok {
			return "", 0, false
		}
		if p, ok := parsePID(second); ok {
			return TempReplSync, p, true
		}
		return "", 0, false
	}
	if p, ok := parsePID(nums); ok {
		return TempBgsave, p, true
	}
	return "", 0, false
}

// parsePID parses a pid as Redis prints it; 0 is no pid.
func parsePID(s string) (int, bool) {
	v, ok := parseDecimal(s)
	if !ok || v == 0 {
		return 0, false
	}
	return v, true
}

// parseDecimal accepts only what printf %d prints for a non-negative int32.
func parseDecimal(s string) (int, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(v), true
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

// CommitReading is the kernel's commit accounting from /proc/meminfo, in bytes.
type CommitReading struct {
	Limit, Committed int64
}

// ParseCommit returns CommitLimit and Committed_AS from the text of /proc/meminfo.
func ParseCommit(s string) (CommitReading, error) {
	c := CommitReading{Limit: -1, Committed: -1}
	for line := range strings.Lines(s) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var err error
		switch key {
		case "CommitLimit":
			c.Limit, err = parseKB(strings.TrimSpace(val))
		case "Committed_AS":
			c.Committed, err = parseKB(strings.TrimSpace(val))
		}
		if err != nil {
			return c, fmt.Errorf("parse meminfo %s: %w", key, err)
		}
	}
	if c.Limit < 0 || c.Committed < 0 {
		return c, errors.New("parse meminfo: no CommitLimit or Committed_AS line")
	}
	return c, nil
}
