package preflight

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// aofServer writes 200 keys to a real server of build b with AOF on, stops it
// cleanly, and returns it, a config file for preflight naming its data dir, the
// path of the last INCR file and the build's own checker (redis-check-aof or
// valkey-check-aof).
func aofServer(t *testing.T, b testredis.Build) (srv *testredis.Server, conf, incr, checker string) {
	t.Helper()
	srv = testredis.Start(t, testredis.Options{AppendOnly: true, NoSave: true, Build: b})
	c := srv.Client(t)
	ctx := context.Background()
	for i := range 200 {
		if err := c.Set(ctx, "k"+strconv.Itoa(i), "value", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Do(ctx, "SHUTDOWN", "NOSAVE").Err() // the connection drops: no reply
	conf = filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(conf, []byte("# the server's file\ndir "+srv.DataDir+"\nappendonly yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	incrs, _ := filepath.Glob(filepath.Join(srv.DataDir, "appendonlydir", "*.incr.aof"))
	if len(incrs) != 1 {
		t.Fatalf("INCR files %q, want one", incrs)
	}
	return srv, conf, incrs[0], b.Tool(t, "check-aof")
}

// eachBuild runs test on every server build, each with its own checker.
func eachBuild(t *testing.T, test func(t *testing.T, b testredis.Build)) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPreflightValid(t *testing.T) { eachBuild(t, preflightValid) }

func preflightValid(t *testing.T, b testredis.Build) {
	_, conf, _, checker := aofServer(t, b)
	r, err := Run(context.Background(), Options{RedisConf: conf, CheckAOF: checker, Fix: true, MaxTruncate: 1 << 20})
	if err != nil || r.Checked == "" || r.Bad != "" {
		t.Errorf("Run = %+v, %v; want the manifest checked and valid", r, err)
	}
}

// TestPreflightTornTail: a write cut short at the end of the last INCR file.
// Without the fix it is reported and left alone; with it, the file is copied aside
// and cut, and the server loads the rest.
func TestPreflightTornTail(t *testing.T) { eachBuild(t, preflightTornTail) }

func preflightTornTail(t *testing.T, b testredis.Build) {
	srv, conf, incr, checker := aofServer(t, b)
	whole := read(t, incr)
	torn := whole[:len(whole)-7]
	if err := os.WriteFile(incr, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Options{RedisConf: conf, CheckAOF: checker, Fix: false, MaxTruncate: 1 << 20})
	if err != nil || r.Bad != incr || !r.TornTail || r.Fixed || r.Loss <= 0 || r.ValidUpTo <= 0 {
		t.Fatalf("fix off: %+v, %v; want the torn tail of %s reported, not fixed", r, err, incr)
	}
	if !bytes.Equal(read(t, incr), torn) {
		t.Fatal("fix off: the file was changed")
	}

	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	r, err = Run(context.Background(), Options{RedisConf: conf, CheckAOF: checker, Fix: true, MaxTruncate: 1 << 20, Now: func() time.Time { return now }})
	if err != nil || !r.Fixed {
		t.Fatalf("fix on: %+v, %v; want it fixed", r, err)
	}
	if !bytes.Equal(read(t, r.Backup), torn) {
		t.Error("the copy kept aside is not the original")
	}
	if got := read(t, incr); int64(len(got)) != r.ValidUpTo || !bytes.Equal(got, torn[:r.ValidUpTo]) {
		t.Errorf("the file is %d bytes, want the first %d of the original", len(got), r.ValidUpTo)
	}
	// The server starts and has every key but the one whose write was cut.
	srv.Restart(t)
	n, err := srv.Client(t).DBSize(context.Background()).Result()
	if err != nil || n != 199 {
		t.Errorf("after the fix the server has %d keys (%v), want 199", n, err)
	}
}

// TestPreflightNeverFixesTheMiddle: damage with real commands after it is never
// cut, and neither is a tail longer than max_truncate_bytes.
func TestPreflightNeverFixesTheMiddle(t *testing.T) { eachBuild(t, preflightNeverFixesTheMiddle) }

func preflightNeverFixesTheMiddle(t *testing.T, b testredis.Build) {
	_, conf, incr, checker := aofServer(t, b)
	data := read(t, incr)
	data[len(data)/3] = 'X'
	if err := os.WriteFile(incr, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Options{RedisConf: conf, CheckAOF: checker, Fix: true, MaxTruncate: 1 << 30})
	if err != nil || r.Bad == "" || r.TornTail || r.Fixed || !strings.Contains(r.Why, "not a torn tail") {
		t.Fatalf("middle: %+v, %v; want it reported and left alone", r, err)
	}
	if !bytes.Equal(read(t, incr), data) {
		t.Fatal("middle: the file was changed")
	}

	_, conf2, incr2, _ := aofServer(t, b)
	b2 := read(t, incr2)
	if err := os.WriteFile(incr2, b2[:len(b2)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = Run(context.Background(), Options{RedisConf: conf2, CheckAOF: checker, Fix: true, MaxTruncate: 4})
	if err != nil || !r.TornTail || r.Fixed || !strings.Contains(r.Why, "max_truncate_bytes") {
		t.Fatalf("over the limit: %+v, %v; want it reported and left alone", r, err)
	}
}

// TestFindChecker: without --check-aof, the checker of the server's family comes
// first when both are on PATH.
func TestFindChecker(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"redis-check-aof", "valkey-check-aof"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	for conf, want := range map[string]string{
		"/etc/redis/redis.conf":       "redis-check-aof",
		"/etc/valkey/valkey.conf":     "valkey-check-aof",
		"/srv/Valkey-6380/server.cfg": "valkey-check-aof",
	} {
		got, err := findChecker("", conf)
		if err != nil || filepath.Base(got) != want {
			t.Errorf("findChecker(%q) = %q, %v; want %s", conf, got, err, want)
		}
	}
	if got, _ := findChecker("/opt/x/check", "/etc/valkey/valkey.conf"); got != "/opt/x/check" {
		t.Errorf("a given checker was replaced by %q", got)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := findChecker("", "/etc/redis/redis.conf"); err == nil || !strings.Contains(err.Error(), "--check-aof") {
		t.Errorf("no checker on PATH: err = %v, want one naming --check-aof", err)
	}
}
