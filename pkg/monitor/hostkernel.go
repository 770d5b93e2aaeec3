package monitor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/mem"
)

// The memory and kernel settings readers: the host's memory and swap, the
// overcommit mode and commit accounting, and the transparent huge page mode,
// with the pure parsers of their files.

// readMemory fills r's memory and swap, from gopsutil behind the host cache:
// VirtualMemory splits every line of meminfo into fresh strings (two thirds of a
// tick's allocations when read each tick), and fork headroom is a slow-moving
// warning.
func (h *HostSource) readMemory(ctx context.Context, r *HostReading, errf errorf) {
	m, err := cached(h.cache, "memory", func() (*mem.VirtualMemoryStat, error) {
		return mem.VirtualMemoryWithContext(h.env(ctx))
	})
	if err != nil {
		errf("memory: %v", err)
		return
	}
	r.MemTotal, r.MemAvailable, r.SwapTotal, r.SwapFree = m.Total, m.Available, m.SwapTotal, m.SwapFree
}

// readKernel fills r's kernel settings, and the commit accounting under strict
// overcommit.
func (h *HostSource) readKernel(r *HostReading, errf errorf) {
	// Changed by an operator now and then, so cached.
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
}

// The pure parsers of the kernel settings and meminfo.

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
