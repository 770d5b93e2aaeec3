package monitor_test

// Benchmarks of the per-tick hot paths: the pure parsers on fixtures captured from real
// servers, and the I/O readings against a real redis-server started for the benchmark.
// `make bench` runs them; `go test -bench . -benchmem ./pkg/...` alone works too.

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

func readFixture(b *testing.B, name string) string {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		b.Fatalf("read fixture: %v", err)
	}
	return string(raw)
}

func BenchmarkParseInfo(b *testing.B) {
	raw := readFixture(b, "info-7.0.15.txt")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	var in monitor.Info
	for b.Loop() {
		in = monitor.ParseInfo(raw)
	}
	if in.Version == "" {
		b.Fatal("ParseInfo found no version in the fixture")
	}
}

// BenchmarkParseLogLine parses every line of a real fault log, most of which are
// not events: the follower sees the same mix.
func BenchmarkParseLogLine(b *testing.B) {
	f, err := os.Open(filepath.Join("testdata", "redis-7.0-faults.log"))
	if err != nil {
		b.Fatalf("open fixture: %v", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil || len(lines) == 0 {
		b.Fatalf("read fixture: %d lines, %v", len(lines), err)
	}
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		events = 0
		for _, l := range lines {
			if _, ok := monitor.ParseLogLine(l, time.UTC); ok {
				events++
			}
		}
	}
	b.ReportMetric(float64(len(lines)), "lines/op")
	if events == 0 {
		b.Fatal("no event recognised in the fault log fixture")
	}
}

// realServer starts a private redis-server for a benchmark and returns a collector
// wired as the daemon wires it (the follower is not started: a tick reads what the
// follower has, it does not run it).
func realServer(b *testing.B) (*testredis.Server, *monitor.Collector, *monitor.HostSource) {
	b.Helper()
	srv := testredis.Start(b, testredis.Options{})
	ro := monitor.RedisOptions{Addr: srv.Socket, DialTimeout: time.Second, CommandTimeout: time.Second, ConfigRefresh: time.Minute}
	client, err := monitor.NewRedisClient(ro)
	if err != nil {
		b.Fatalf("NewRedisClient: %v", err)
	}
	b.Cleanup(func() { _ = client.Close() })
	host := monitor.NewHostSource(monitor.HostOptions{})
	col := monitor.NewCollector(monitor.CollectorOptions{Name: "bench", Addr: srv.Socket, Redis: monitor.NewRedisSource(client, ro), Host: host})
	return srv, col, host
}

// BenchmarkCollectorSnapshot is one steady-state tick's reading: INFO over the unix
// socket, the host facts, the log state.
func BenchmarkCollectorSnapshot(b *testing.B) {
	_, col, _ := realServer(b)
	ctx := context.Background()
	// The first Snapshot fetches CONFIG and scans the log tail; steady state is after.
	if s := col.Snapshot(ctx, time.Now()); s.Redis.Err != nil || !s.Host.Available {
		b.Fatalf("first snapshot: redis err %v, host available %v (%s)", s.Redis.Err, s.Host.Available, s.Host.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		s := col.Snapshot(ctx, time.Now())
		if s.Redis.Err != nil {
			b.Fatalf("snapshot: %v", s.Redis.Err)
		}
	}
}

// BenchmarkHostRead is the host part of a tick alone: /proc, /sys, statfs, cgroup.
func BenchmarkHostRead(b *testing.B) {
	srv, col, host := realServer(b)
	s := col.Snapshot(context.Background(), time.Now())
	if s.Redis.Err != nil {
		b.Fatalf("snapshot: %v", s.Redis.Err)
	}
	cfg := s.Redis.Config
	target := monitor.HostTarget{PID: srv.PID, Dir: cfg["dir"], AOFDirName: cfg["appenddirname"], DBFilename: cfg["dbfilename"], AppendFilename: cfg["appendfilename"]}
	ctx := context.Background()
	// Some readings fail on some hosts (cgroup v1 has no memory.max): that is part of
	// the measured path, so only an unavailable host is fatal.
	if r := host.Read(ctx, target); len(r.Errors) > 0 {
		b.Logf("host reading errors on this machine: %q", r.Errors)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := host.Read(ctx, target)
		if !r.Available {
			b.Fatalf("host read: unavailable: %s", r.Reason)
		}
	}
}
