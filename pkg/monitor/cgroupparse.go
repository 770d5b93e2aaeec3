package monitor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The pure parsers of the cgroup files: /proc/<pid>/cgroup and the memory
// controller's files.

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
