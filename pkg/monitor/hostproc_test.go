package monitor

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestResolveAgainstCwd: the host's dirs and the collector's log path resolve a
// relative name against the Redis process's working directory, never the
// guardian's own.
func TestResolveAgainstCwd(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	cwd := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "4242"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cwd, filepath.Join(proc, "4242", "cwd")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
		pid            int
		wantErr        bool
	}{
		{name: "absolute is cleaned", in: "/var/lib/redis/", pid: 4242, want: "/var/lib/redis"},
		{name: "absolute needs no process", in: "/var/lib/redis", pid: 77, want: "/var/lib/redis"},
		{name: "relative", in: "redis.log", pid: 4242, want: filepath.Join(cwd, "redis.log")},
		{name: "dot", in: ".", pid: 4242, want: cwd},
		{name: "empty is the cwd", in: "", pid: 4242, want: cwd},
		{name: "no such process", in: "redis.log", pid: 77, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := resolveAgainstCwd(proc, tt.pid, tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("resolveAgainstCwd(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestCollectorRelativeLogfileResolved: a relative logfile is followed where
// Redis opened it, under its working directory.
func TestCollectorRelativeLogfileResolved(t *testing.T) {
	t.Parallel()
	proc, cwd := t.TempDir(), t.TempDir()
	pidDir := filepath.Join(proc, strconv.Itoa(fakePID))
	if err := os.MkdirAll(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cwd, filepath.Join(pidDir, "cwd")); err != nil {
		t.Fatal(err)
	}
	c := NewCollector(CollectorOptions{Name: "x", HostChecks: "on", ProcRoot: proc})
	src, path := c.logTarget(RedisReading{Config: RedisConfig{"logfile": "redis.log"}}, HostReading{Available: true, PID: fakePID})
	if src != LogFile || path != filepath.Join(cwd, "redis.log") {
		t.Errorf("logTarget = %s %q, want file %q", src, path, filepath.Join(cwd, "redis.log"))
	}
}
