package testredis

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestMemoryCgroup: the server runs in the group from its start, with the limit
// set, and the group is gone after the test.
func TestMemoryCgroup(t *testing.T) {
	var dir string
	t.Run("server in the group", func(t *testing.T) {
		cg := MemoryCgroup(t, 256<<20)
		dir = cg.Dir
		s := Start(t, Options{NoSave: true, MemCgroup: cg})
		b, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID) + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		want := ":" + cg.Path + "\n"
		if cg.Version == 2 {
			want = "0::" + cg.Path + "\n"
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("/proc/%d/cgroup:\n%s\nwant a line ending in %q", s.PID, b, want)
		}
		if procs := cg.ReadFile(t, "cgroup.procs"); strings.TrimSpace(procs) != strconv.Itoa(s.PID) {
			t.Errorf("cgroup.procs = %q, want only the server %d", procs, s.PID)
		}
		limit := "memory.max"
		if cg.Version == 1 {
			limit = "memory.limit_in_bytes"
		}
		if got := strings.TrimSpace(cg.ReadFile(t, limit)); got != strconv.Itoa(256<<20) {
			t.Errorf("%s = %s, want %d", limit, got, 256<<20)
		}
	})
	if dir == "" {
		return // skipped
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s still there after the test (stat: %v)", dir, err)
	}
}
