package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cgroupRoot is where the cgroup hierarchies are mounted: the v1 memory
// controller at cgroupRoot/memory, the v2 unified hierarchy at cgroupRoot.
const cgroupRoot = "/sys/fs/cgroup"

// memCgroupSeq tells apart the groups one test process makes.
var memCgroupSeq atomic.Int64

// MemCgroup is a memory cgroup a test made for its servers (MemoryCgroup), on
// cgroup v1 or v2, whichever holds this machine's memory controller.
type MemCgroup struct {
	// Version is 1 or 2.
	Version int
	// Dir is the group's directory under the mount; Path is the group as
	// /proc/PID/cgroup shows it.
	Dir, Path string
}

// MemoryCgroup makes a memory cgroup as a child of the test process's own, with a
// limit of limit bytes (0: none), and removes it in t.Cleanup, after killing what
// still runs in it. Start a server with Options.MemCgroup set to it: the server
// is put in the group before it starts, so all it allocates is charged there. The
// group does not swap, so the limit bites as it does on a host without swap. A
// machine where no group can be made fails the test under CI=true and skips it
// elsewhere, as RequireRoot does.
func MemoryCgroup(t testing.TB, limit int64) *MemCgroup {
	t.Helper()
	RequireRoot(t)
	c, err := newMemCgroup()
	if err != nil {
		msg := fmt.Sprintf("testredis: MemoryCgroup: %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (required under CI=true)")
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if err := c.remove(); err != nil {
			t.Errorf("testredis: %v", err)
		}
	})
	// No swap: v1's per-group swappiness 0 keeps anonymous memory in RAM, v2's
	// memory.swap.max 0 forbids swap. Best effort: a host without swap has none.
	if c.Version == 1 {
		_ = c.write("memory.swappiness", "0")
	} else {
		_ = c.write("memory.swap.max", "0")
	}
	if limit > 0 {
		c.SetLimit(t, limit)
	}
	return c
}

// newMemCgroup makes the group under the test process's own memory cgroup.
func newMemCgroup() (*MemCgroup, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	defer f.Close()
	version, own := 0, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" && version == 0 {
			version, own = 2, parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				version, own = 1, parts[2]
			}
		}
	}
	if version == 0 {
		return nil, errors.New("no memory cgroup in /proc/self/cgroup")
	}
	mount := cgroupRoot
	if version == 1 {
		mount = filepath.Join(cgroupRoot, "memory")
	}
	parent := filepath.Join(mount, own)
	limitFile := "memory.limit_in_bytes"
	if version == 2 {
		limitFile = "memory.max"
		// A v2 group gets memory files only when its parent passes the controller
		// down; the kernel refuses that while the parent itself holds processes
		// (this one), and then no group can be made here.
		if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory"), 0o644); err != nil {
			return nil, fmt.Errorf("enable the memory controller below %s: %w", parent, err)
		}
	}
	name := fmt.Sprintf("rg-mem-%d-%d", os.Getpid(), memCgroupSeq.Add(1))
	c := &MemCgroup{Version: version, Dir: filepath.Join(parent, name), Path: filepath.Join(own, name)}
	if err := os.Mkdir(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("make memory cgroup v%d under %s: %w", version, parent, err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, limitFile)); err != nil {
		_ = syscall.Rmdir(c.Dir)
		return nil, fmt.Errorf("memory cgroup %s has no %s: %w", c.Dir, limitFile, err)
	}
	return c, nil
}

// SetLimit sets the group's memory limit to limit bytes. Below the group's
// usage, the kernel first reclaims what it can (page cache); a v1 kernel refuses
// a limit it cannot reach, which fails the test.
func (c *MemCgroup) SetLimit(t testing.TB, limit int64) {
	t.Helper()
	name := "memory.max"
	if c.Version == 1 {
		name = "memory.limit_in_bytes"
	}
	if err := c.write(name, strconv.FormatInt(limit, 10)); err != nil {
		t.Fatalf("testredis: set %s of %s to %d: %v", name, c.Dir, limit, err)
	}
}

// ReadFile returns the text of one of the group's files, e.g. memory.oom_control.
func (c *MemCgroup) ReadFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, name))
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	return string(b)
}

// Int reads one of the group's files that holds a number (memory.current ...).
func (c *MemCgroup) Int(t testing.TB, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(c.ReadFile(t, name)), 10, 64)
	if err != nil {
		t.Fatalf("testredis: %s of %s: %v", name, c.Dir, err)
	}
	return n
}

// WorkingSet is the group's usage less its inactive page cache (v1 or v2), as
// the guardian and the kubelet count it.
func (c *MemCgroup) WorkingSet(t testing.TB) int64 {
	t.Helper()
	usage, inactive := "memory.usage_in_bytes", "total_inactive_file"
	if c.Version == 2 {
		usage, inactive = "memory.current", "inactive_file"
	}
	return c.Int(t, usage) - StatField(c.ReadFile(t, "memory.stat"), inactive)
}

// OOMKills is the group's OOM kill count (v1 memory.oom_control, v2 memory.events).
func (c *MemCgroup) OOMKills(t testing.TB) int64 {
	t.Helper()
	name := "memory.oom_control"
	if c.Version == 2 {
		name = "memory.events"
	}
	return StatField(c.ReadFile(t, name), "oom_kill")
}

// StatField is one "name value" line's value of a cgroup key-value file
// (memory.stat, memory.events, memory.oom_control); 0 when absent.
func StatField(text, name string) int64 {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// procsFile is the file a process writes its pid to, to join the group.
func (c *MemCgroup) procsFile() string { return filepath.Join(c.Dir, "cgroup.procs") }

func (c *MemCgroup) write(name, value string) error {
	return os.WriteFile(filepath.Join(c.Dir, name), []byte(value), 0o644)
}

// remove kills what still runs in the group and removes it; the kernel refuses to
// remove a group with processes, and takes a moment to let go of dead ones.
func (c *MemCgroup) remove() error {
	deadline := time.Now().Add(stopDeadline)
	for {
		b, err := os.ReadFile(c.procsFile())
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		pids := strings.Fields(string(b))
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if len(pids) == 0 {
			err := syscall.Rmdir(c.Dir)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				return nil
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("remove memory cgroup %s: %w", c.Dir, err)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("remove memory cgroup %s: processes %v still in it %s after SIGKILL", c.Dir, pids, stopDeadline)
		}
		time.Sleep(pollInterval)
	}
}

// joinCgroup wraps a command so that it joins the group before it runs: a shell
// writes its own pid to the group and execs the command, which keeps that pid,
// so the server and everything it forks are charged to the group from the start.
// (Go's SysProcAttr.CgroupFD only knows v2.)
func (c *MemCgroup) joinCgroup(name string, args []string) (string, []string) {
	return "sh", append([]string{"-c", `echo $$ >"$0" && exec "$@"`, c.procsFile(), name}, args...)
}
