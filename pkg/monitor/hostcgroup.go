package monitor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The cgroup reader: the memory limit, usage, working set and OOM kills of the
// Redis process's memory cgroup, on cgroup v1 (RHEL 8, and hosts booted with the
// legacy or hybrid hierarchy) and v2. Its pure parsers are in cgroupparse.go.

// cgroupFiles names a memory controller's files: v1 and v2 hold the same facts
// under other names.
type cgroupFiles struct {
	usage, limit, stat string
	// events holds oom_kill; failcnt, when set, is a file of its own (v1), else
	// failKey is read from events (v2).
	events, failcnt, failKey string
}

var (
	cgroupV1Files = cgroupFiles{usage: "memory.usage_in_bytes", limit: "memory.limit_in_bytes", stat: "memory.stat",
		events: "memory.oom_control", failcnt: "memory.failcnt"}
	cgroupV2Files = cgroupFiles{usage: "memory.current", limit: "memory.max", stat: "memory.stat",
		events: "memory.events", failKey: "max"}
)

func filesOf(version int) cgroupFiles {
	if version == 1 {
		return cgroupV1Files
	}
	return cgroupV2Files
}

// cgroupLevels is a process's memory cgroup and the directories whose memory
// files apply to it: the nearest with the memory files first (on v2 the
// controller may be enabled only above the process's own cgroup; on v1 every
// cgroup has them), then its ancestors up to the root, each with its path in the
// hierarchy. No levels (and no error) means the root cgroup.
type cgroupLevels struct {
	version int
	path    string
	levels  []cgroupLevel
}

type cgroupLevel struct {
	dir, path string
}

// readCgroup reads the memory state of the process's memory cgroup: usage,
// working set, OOM kills and limit hits from the nearest level with the memory
// files, and as MemoryMax the smallest limit from there up to the root, because
// any ancestor's limit caps the whole subtree. Every file is read even when one
// fails; Known says all of them were.
func (h *HostSource) readCgroup(pidDir string) (CgroupReading, error) {
	// Where the process's memory accounting lives only changes when Redis is moved
	// to another cgroup: resolving it is cached, reading the counters is not.
	cg, err := cached(h.cache, "cgroup "+pidDir, func() (cgroupLevels, error) { return h.resolveCgroup(pidDir) })
	c := CgroupReading{Version: cg.version, Path: cg.path}
	if err != nil {
		return c, err
	}
	if len(cg.levels) == 0 {
		// The root cgroup has no limit, and its usage is the host's.
		c.Known = true
		return c, nil
	}
	files, own := filesOf(cg.version), cg.levels[0].dir
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	usage, usageErr := readCgroupFile(own, files.usage, ParseCgroupCounter)
	note(usageErr)
	c.MemoryCurrent = usage
	stat, err := readCgroupFile(own, files.stat, ParseCgroupKeyed)
	note(err)
	if err == nil && usageErr == nil {
		c.WorkingSet, err = WorkingSet(usage, stat, cg.version)
		note(err)
	}
	// A v1 kernel before 4.13 has no oom_kill line: no kills are seen then.
	events, err := readCgroupFile(own, files.events, ParseCgroupKeyed)
	note(err)
	c.OOMKill = events["oom_kill"]
	if files.failcnt != "" {
		c.Failcnt, err = readCgroupFile(own, files.failcnt, ParseCgroupCounter)
		note(err)
	} else {
		c.Failcnt = events[files.failKey]
	}
	for _, l := range cg.levels {
		f, err := os.Open(filepath.Join(l.dir, files.limit))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the v2 root, or a v2 level without the controller
		}
		var limit uint64
		if err == nil {
			limit, err = ParseCgroupLimit(f, cg.version)
			f.Close()
		}
		if err != nil {
			note(err)
			continue
		}
		if limit != 0 && (c.MemoryMax == 0 || limit < c.MemoryMax) {
			c.MemoryMax, c.LimitPath = limit, l.path
		}
	}
	c.Known = len(errs) == 0
	return c, errors.Join(errs...)
}

// readCgroupFile opens dir/name and parses it.
func readCgroupFile[T any](dir, name string, parse func(r io.Reader, name string) (T, error)) (T, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return parse(f, name)
}

// resolveCgroup finds the process's memory cgroup and its levels: on v1 under the
// memory controller's mount, /sys/fs/cgroup/memory, on v2 under the unified
// hierarchy's, /sys/fs/cgroup.
func (h *HostSource) resolveCgroup(pidDir string) (cgroupLevels, error) {
	var cg cgroupLevels
	f, err := os.Open(filepath.Join(pidDir, "cgroup"))
	if err != nil {
		return cg, fmt.Errorf("read process cgroup: %w", err)
	}
	m, err := ParseMemoryCgroup(f)
	f.Close()
	if err != nil {
		return cg, err
	}
	cg.version, cg.path = m.Version, m.Path
	// Inside a cgroup namespace, a cgroup outside it shows as "/../x"; joining that
	// would leave the mount.
	if slices.Contains(strings.Split(m.Path, "/"), "..") {
		return cg, fmt.Errorf("cgroup %s is outside this cgroup namespace", m.Path)
	}
	mount := filepath.Join(h.sysRoot, "fs", "cgroup")
	if m.Version == 1 {
		mount = filepath.Join(mount, "memory")
	}
	if m.Path == "/" {
		return cg, nil
	}
	var levels []cgroupLevel // from the process's cgroup up to the root
	for rel := filepath.Clean(m.Path); ; rel = filepath.Dir(rel) {
		levels = append(levels, cgroupLevel{dir: filepath.Join(mount, rel), path: rel})
		if rel == "/" {
			break
		}
	}
	usage := filesOf(m.Version).usage
	for i, l := range levels {
		if _, err := os.Stat(filepath.Join(l.dir, usage)); err == nil {
			cg.levels = levels[i:]
			return cg, nil
		}
		if m.Version == 1 {
			break // every v1 cgroup has its memory files: the process's own must be there
		}
	}
	return cg, fmt.Errorf("no memory controller for cgroup v%d %s under %s", m.Version, m.Path, mount)
}
