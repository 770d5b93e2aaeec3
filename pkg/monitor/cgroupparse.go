package monitor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The pure parsers of the cgroup files: /proc/<pid>/cgroup and the memory
// controller's files of cgroup v1 and v2. The new ones take an io.Reader (the
// caller opens the file), as node_exporter's parsers do; the older string ones
// are kept for their callers.

// MemoryCgroup is where a process's memory is accounted: the cgroup version whose
// hierarchy holds the memory controller, and the process's path in it.
type MemoryCgroup struct {
	Version int // 1 (legacy or hybrid hierarchy) or 2 (unified)
	Path    string
}

// errNoMemoryCgroup: /proc/<pid>/cgroup names neither a v1 memory hierarchy nor
// the unified one.
var errNoMemoryCgroup = errors.New("no memory controller and no unified hierarchy in the process's cgroups")

// ParseMemoryCgroup reads /proc/<pid>/cgroup ("id:controllers:path" lines) and
// returns the memory cgroup: the v1 line whose controllers include memory when
// there is one (a hybrid host also has a "0::" line, which then carries no memory
// accounting), else the v2 "0::" line.
func ParseMemoryCgroup(r io.Reader) (MemoryCgroup, error) {
	var v1, v2 *MemoryCgroup
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		id, rest, ok := strings.Cut(line, ":")
		controllers, p, ok2 := strings.Cut(rest, ":")
		if !ok || !ok2 {
			return MemoryCgroup{}, fmt.Errorf("parse cgroup line %q: want id:controllers:path", line)
		}
		if id == "0" && controllers == "" {
			v2 = &MemoryCgroup{Version: 2, Path: p}
			continue
		}
		for c := range strings.SplitSeq(controllers, ",") {
			if c == "memory" {
				v1 = &MemoryCgroup{Version: 1, Path: p}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return MemoryCgroup{}, fmt.Errorf("read cgroup: %w", err)
	}
	m := v1
	if m == nil {
		m = v2
	}
	if m == nil {
		return MemoryCgroup{}, errNoMemoryCgroup
	}
	if !strings.HasPrefix(m.Path, "/") {
		return MemoryCgroup{}, fmt.Errorf("parse cgroup: path %q is not absolute", m.Path)
	}
	return *m, nil
}

// ErrCgroupV1 is returned by ParseCgroup when the memory controller is mounted as
// cgroup v1 (legacy or hybrid hierarchy): the v2 path then carries no memory
// accounting (ParseMemoryCgroup gives the v1 path).
var ErrCgroupV1 = errors.New("memory controller on cgroup v1")

// ParseCgroup returns the cgroup v2 path of a process from /proc/<pid>/cgroup, the
// path of its "0::" line. It returns ErrCgroupV1 when a v1 hierarchy holds the
// memory controller, or when there is no unified hierarchy at all.
func ParseCgroup(s string) (string, error) {
	m, err := ParseMemoryCgroup(strings.NewReader(s))
	switch {
	case errors.Is(err, errNoMemoryCgroup), err == nil && m.Version == 1:
		return "", ErrCgroupV1
	case err != nil:
		return "", err
	}
	return m.Path, nil
}

// cgroupV1Unlimited is where cgroup v1's memory.limit_in_bytes stops being a
// limit: "unlimited" reads as the page counter's maximum (9223372036854771712
// with 4 KiB pages, LONG_MAX rounded down to a page), and no machine has 2^62
// bytes.
const cgroupV1Unlimited = 1 << 62

// ParseCgroupLimit parses a memory limit file: v2 memory.max ("max" is no limit)
// or v1 memory.limit_in_bytes (cgroupV1Unlimited or more is no limit). No limit
// gives 0.
func ParseCgroupLimit(r io.Reader, version int) (uint64, error) {
	name := "memory.max"
	if version == 1 {
		name = "memory.limit_in_bytes"
	}
	s, err := readSmall(r, name)
	if err != nil {
		return 0, err
	}
	if version == 2 && s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", name, err)
	}
	if version == 1 && v >= cgroupV1Unlimited {
		return 0, nil
	}
	return v, nil
}

// ParseCgroupCounter parses a memory file holding one number in bytes or a
// count: v2 memory.current, v1 memory.usage_in_bytes and memory.failcnt. name
// is the file's, for the error.
func ParseCgroupCounter(r io.Reader, name string) (uint64, error) {
	s, err := readSmall(r, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", name, err)
	}
	return v, nil
}

// ParseCgroupKeyed parses a flat-keyed memory file ("key value" lines): v2
// memory.events and memory.stat, v1 memory.stat and memory.oom_control. The
// caller picks the keys it needs, so new kernel counters do no harm. name is the
// file's, for the error.
func ParseCgroupKeyed(r io.Reader, name string) (map[string]uint64, error) {
	m := make(map[string]uint64)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("parse %s line %q: want key value", name, strings.TrimSpace(sc.Text()))
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s %s: %w", name, f[0], err)
		}
		m[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return m, nil
}

// WorkingSet is usage minus the inactive file pages of a memory.stat (v1
// total_inactive_file, hierarchical; v2 inactive_file), as the kubelet counts a
// cgroup's working set: page cache the kernel drops first under the limit does
// not count. It is 0 rather than negative when the inactive pages exceed usage
// (the two files are not read at one instant).
func WorkingSet(usage uint64, stat map[string]uint64, version int) (uint64, error) {
	key := "inactive_file"
	if version == 1 {
		key = "total_inactive_file"
	}
	inactive, ok := stat[key]
	if !ok {
		return 0, fmt.Errorf("memory.stat has no %s", key)
	}
	if inactive > usage {
		return 0, nil
	}
	return usage - inactive, nil
}

// readSmall reads a one-value file, trimmed.
func readSmall(r io.Reader, name string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 256))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ParseCgroupMemoryMax parses memory.max; "max" (no limit) gives 0.
func ParseCgroupMemoryMax(s string) (uint64, error) {
	return ParseCgroupLimit(strings.NewReader(s), 2)
}

// ParseCgroupMemoryCurrent parses memory.current, in bytes.
func ParseCgroupMemoryCurrent(s string) (uint64, error) {
	return ParseCgroupCounter(strings.NewReader(s), "memory.current")
}

// ParseCgroupMemoryEvents parses memory.events ("oom_kill 2" lines) into a map.
func ParseCgroupMemoryEvents(s string) (map[string]uint64, error) {
	return ParseCgroupKeyed(strings.NewReader(s), "memory.events")
}
