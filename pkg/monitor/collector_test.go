package monitor

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCollectorReplacesTheFollower: when Redis starts logging elsewhere, the old
// file's follower is stopped (it would otherwise leak and keep waking the loop)
// and one for the new file starts.
func TestCollectorReplacesTheFollower(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := NewCollector(CollectorOptions{Name: "x", HostChecks: "on", ProcRoot: dir})
	var started []string
	stopped := map[string]int{}
	c.SetFollowerStarter(func(f *Follower) func() {
		p := f.opts.Path
		started = append(started, p)
		return func() { stopped[p]++ }
	})
	host := HostReading{Available: true, PID: -1}
	for _, p := range []string{a, a, b, b} {
		if r := c.readLog(RedisReading{Config: RedisConfig{"logfile": p}}, host); r.Source != "file" || r.Path != p {
			t.Fatalf("reading for logfile %s: %+v", p, r)
		}
	}
	if len(started) != 2 || started[0] != a || started[1] != b {
		t.Errorf("followers started for %v, want [%s %s]", started, a, b)
	}
	if stopped[a] != 1 || stopped[b] != 0 {
		t.Errorf("stops %v, want the old file's follower stopped once and the new one running", stopped)
	}
}

// TestCollectorRelativeLogfileUnresolved: a relative logfile whose Redis working
// directory cannot be read is not followed relative to the guardian's own.
func TestCollectorRelativeLogfileUnresolved(t *testing.T) {
	t.Parallel()
	c := NewCollector(CollectorOptions{Name: "x", HostChecks: "on", ProcRoot: t.TempDir()})
	r := c.readLog(RedisReading{Config: RedisConfig{"logfile": "redis.log"}}, HostReading{Available: true, PID: 4242})
	if r.Source != "unavailable" || r.Path != "" {
		t.Errorf("reading %+v, want unavailable", r)
	}
}

// TestScanLogTailCarriesCause: the one-shot scan keeps the cause of an AOF rewrite
// failure from the line before it, as the follower does.
func TestScanLogTailCarriesCause(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "redis.log")
	log := "9213:C 21 Nov 2026 10:00:00.000 # Write error writing append only file on disk: No space left on device\n" +
		"1:M 21 Nov 2026 10:00:00.100 # Background AOF rewrite terminated with error\n"
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ScanLogTail(p, 64<<10, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := got[LogAOFRewriteError]; !ok || ev.Cause == "" {
		t.Errorf("AOF rewrite error %+v (found %v): want the cause carried from the line before", ev, ok)
	}
}
