package monitor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The cgroup reader: the memory limit, usage and OOM kills of the Redis
// process's memory cgroup. Its pure parsers are in cgroupparse.go.

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
