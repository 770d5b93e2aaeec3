package testredis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const waitTimeout = 15 * time.Second

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitLog waits until the server's log contains substr.
func waitLog(t *testing.T, s *Server, substr string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		b, _ := os.ReadFile(s.LogFile)
		if strings.Contains(string(b), substr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q after %s; tail:\n%s", substr, waitTimeout, s.LogTail(20))
		}
		time.Sleep(pollInterval)
	}
}

// bgsave asks for a BGSAVE; the reply does not matter (a failing fork answers with an
// error), the tests look at INFO and the log.
func bgsave(t *testing.T, c *redis.Client) {
	t.Helper()
	_ = c.BgSave(ctxT(t)).Err()
}

func mounted(dir string) bool {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 1 && fs[1] == dir {
			return true
		}
	}
	return false
}

func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("read status of %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no Uid line for %d", pid)
	return ""
}

func TestParseInfo(t *testing.T) {
	t.Parallel()
	raw := "# Persistence\r\nloading:0\r\nrdb_last_bgsave_status:err\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\nexecutable:/usr/bin/redis-server\r\n"
	m := parseInfo(raw)
	for k, want := range map[string]string{
		"loading": "0", "rdb_last_bgsave_status": "err",
		"db0": "keys=3,expires=0,avg_ttl=0", "executable": "/usr/bin/redis-server",
	} {
		if m[k] != want {
			t.Errorf("%s = %q, want %q", k, m[k], want)
		}
	}
	if got, want := infoSection(raw, "Persistence"), "loading:0\nrdb_last_bgsave_status:err\n"; got != want {
		t.Errorf("infoSection = %q, want %q", got, want)
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	st, ok := parseProcStat(42, "42 (redis-rdb (bg) x) S 7 9 9 0 -1")
	if !ok || st.ppid != 7 || st.pgrp != 9 || st.state != 'S' {
		t.Fatalf("parseProcStat = %+v, %v", st, ok)
	}
	if _, ok := parseProcStat(1, "garbage"); ok {
		t.Fatal("parseProcStat accepted garbage")
	}
}

func TestStart(t *testing.T) {
	RequireRoot(t)
	t.Parallel()

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		s := Start(t, Options{})
		c := s.Client(t)
		if pong, err := c.Ping(ctxT(t)).Result(); err != nil || pong != "PONG" {
			t.Fatalf("PING = %q, %v", pong, err)
		}
		if s.Addr != "" {
			t.Errorf("Addr = %q without TCP", s.Addr)
		}
		uid, _, err := lookupRedis()
		if err != nil {
			t.Fatal(err)
		}
		if got := procUID(t, s.PID); got != strconv.Itoa(uid) {
			t.Errorf("redis-server runs as uid %s, want %d", got, uid)
		}
		fi, err := os.Stat(s.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
			t.Errorf("Dir mode %v uid %d, want 0755 redis", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
		}
		save, err := c.ConfigGet(ctxT(t), "save").Result()
		if err != nil || save["save"] != "900 1" {
			t.Errorf("save = %q, %v; want \"900 1\"", save["save"], err)
		}
		waitLog(t, s, "eady to accept connections")
	})

	t.Run("options", func(t *testing.T) {
		t.Parallel()
		s := Start(t, Options{
			NoSave: true, AppendOnly: true, TCP: true, LogToStdout: true,
			Args: []string{"--requirepass", "sekret", "--rename-command", "CONFIG", "rgconfig"},
		})
		c := s.Client(t)
		ctx := ctxT(t)
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("PING with password: %v", err)
		}
		cfg := redis.NewMapStringStringCmd(ctx, "rgconfig", "GET", "save")
		_ = c.Process(ctx, cfg)
		if save, err := cfg.Result(); err != nil || save["save"] != "" {
			t.Errorf("save = %q, %v; want \"\"", save, err)
		}
		if got := s.Info(t)["aof_enabled"]; got != "1" {
			t.Errorf("aof_enabled = %q", got)
		}
		_, port, err := net.SplitHostPort(s.Addr)
		if err != nil || port == "6379" || port == "0" {
			t.Fatalf("Addr = %q (%v)", s.Addr, err)
		}
		tc := redis.NewClient(&redis.Options{Addr: s.Addr, Password: "sekret"})
		defer tc.Close()
		if err := tc.Ping(ctx).Err(); err != nil {
			t.Errorf("PING over TCP %s: %v", s.Addr, err)
		}
		if filepath.Base(s.LogFile) != "stdout.log" {
			t.Errorf("LogFile = %s", s.LogFile)
		}
		waitLog(t, s, "eady to accept connections")
	})

	t.Run("cleanup", func(t *testing.T) {
		t.Parallel()
		var s *Server
		t.Run("inner", func(t *testing.T) {
			s = Start(t, Options{TmpfsSize: "1m"})
			if !mounted(s.DataDir) {
				t.Fatalf("%s is not a mount point", s.DataDir)
			}
			s.SlowChild(t)
			bgsave(t, s.Client(t))
			s.ChildPID(t, waitTimeout)
			s.DenyDir(t)
			s.FailFork(t)
		})
		if alive(s.PID) {
			t.Errorf("redis-server %d still alive after cleanup", s.PID)
		}
		if m := groupMembers(s.PID); len(m) > 0 {
			t.Errorf("process group %d still has %v after cleanup", s.PID, m)
		}
		if mounted(s.DataDir) {
			t.Errorf("%s still mounted after cleanup", s.DataDir)
		}
		if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Dir %s not removed: %v", s.Dir, err)
		}
	})
}

func TestFailFork(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	s := Start(t, Options{})
	c := s.Client(t)
	lift := s.FailFork(t)
	bgsave(t, c)
	s.WaitFor(t, "failed BGSAVE", waitTimeout, SaveStatus("err"))
	waitLog(t, s, "Can't save in background: fork: Resource temporarily unavailable")
	lift()
	bgsave(t, c)
	s.WaitFor(t, "successful BGSAVE", waitTimeout, SaveStatus("ok"))
}

func TestFillDisk(t *testing.T) {
	RequireRoot(t)
	t.Parallel()

	t.Run("rdb", func(t *testing.T) {
		t.Parallel()
		s := Start(t, Options{TmpfsSize: "256k"})
		c := s.Client(t)
		s.Fill(t, 20, 1024)
		lift := s.FillDisk(t)
		bgsave(t, c)
		s.WaitFor(t, "failed BGSAVE", waitTimeout, SaveStatus("err"))
		// 7.0.15 writes "Write error saving DB on disk(rdbSaveRio): No space left on device".
		waitLog(t, s, "Write error saving DB on disk")
		waitLog(t, s, "No space left on device")
		lift()
		bgsave(t, c)
		s.WaitFor(t, "successful BGSAVE", waitTimeout, SaveStatus("ok"))
	})

	t.Run("aof", func(t *testing.T) {
		t.Parallel()
		s := Start(t, Options{TmpfsSize: "256k", AppendOnly: true})
		c := s.Client(t)
		lift := s.FillDisk(t)
		_ = c.Set(ctxT(t), "k", "v", 0).Err() // the AOF write after the reply fails
		s.WaitFor(t, "failed AOF write", waitTimeout, func(i map[string]string) bool {
			return i["aof_last_write_status"] == "err"
		})
		waitLog(t, s, "Error writing to the AOF file: No space left on device")
		lift()
		s.WaitFor(t, "AOF writes recovered", waitTimeout, func(i map[string]string) bool {
			return i["aof_last_write_status"] == "ok"
		})
	})
}

func TestDenyDir(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	s := Start(t, Options{})
	c := s.Client(t)
	before, err := os.Stat(s.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	lift := s.DenyDir(t)
	bgsave(t, c)
	s.WaitFor(t, "failed BGSAVE", waitTimeout, SaveStatus("err"))
	waitLog(t, s, "Failed opening the temp RDB file")
	waitLog(t, s, "Permission denied")
	lift()
	after, err := os.Stat(s.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Mode() != before.Mode() || after.Sys().(*syscall.Stat_t).Uid != before.Sys().(*syscall.Stat_t).Uid {
		t.Errorf("after lift: mode %v uid %d, want %v uid %d", after.Mode(), after.Sys().(*syscall.Stat_t).Uid,
			before.Mode(), before.Sys().(*syscall.Stat_t).Uid)
	}
	bgsave(t, c)
	s.WaitFor(t, "successful BGSAVE", waitTimeout, SaveStatus("ok"))
}

func TestKillChild(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	s := Start(t, Options{})
	c := s.Client(t)
	s.SlowChild(t)
	bgsave(t, c)
	s.KillChild(t, syscall.SIGKILL)
	s.WaitFor(t, "BGSAVE killed", waitTimeout, SaveStatus("err"))
	waitLog(t, s, "Background saving terminated by signal 9")
}

func TestWriterCountsMISCONF(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	s := Start(t, Options{})
	c := s.Client(t)
	w := s.StartWriter(t, 0)
	waitStats := func(what string, cond func(WriteStats) bool) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for !cond(w.Stats()) {
			if time.Now().After(deadline) {
				t.Fatalf("writer: no %s after %s: %+v", what, waitTimeout, w.Stats())
			}
			time.Sleep(pollInterval)
		}
	}
	waitStats("successful write", func(st WriteStats) bool { return st.OK > 0 })

	lift := s.FailFork(t)
	bgsave(t, c)
	s.WaitFor(t, "failed BGSAVE", waitTimeout, SaveStatus("err"))
	waitStats("MISCONF rejection", func(st WriteStats) bool { return st.Errors["MISCONF"] > 0 })
	lift()
	bgsave(t, c)
	s.WaitFor(t, "successful BGSAVE", waitTimeout, SaveStatus("ok"))
	waitStats("recovery", func(st WriteStats) bool { return !st.FirstOKAfterReject.IsZero() })

	st := w.Stop()
	if st.Rejected != st.Errors["MISCONF"] {
		t.Errorf("rejections other than MISCONF: %+v", st)
	}
	if st.FirstReject.After(st.LastReject) || !st.FirstOKAfterReject.After(st.LastReject) {
		t.Errorf("times out of order: first reject %v, last reject %v, first OK after %v",
			st.FirstReject, st.LastReject, st.FirstOKAfterReject)
	}
	if again := w.Stop(); again.OK != st.OK {
		t.Errorf("second Stop changed counts: %+v vs %+v", again, st)
	}
	t.Logf("writer: %d OK, %d rejected %v, outage %s", st.OK, st.Rejected, st.Errors,
		st.FirstOKAfterReject.Sub(st.FirstReject))
}

func TestKillParentLeavesTempFile(t *testing.T) {
	RequireRoot(t)
	t.Parallel()
	s := Start(t, Options{})
	s.SlowChild(t)
	bgsave(t, s.Client(t))
	child := s.ChildPID(t, waitTimeout)
	temp := filepath.Join(s.DataDir, "temp-"+strconv.Itoa(child)+".rdb")
	deadline := time.Now().Add(waitTimeout)
	for {
		if _, err := os.Stat(temp); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", temp)
		}
		time.Sleep(pollInterval)
	}
	oldPID := s.PID
	s.KillParent(t)
	if alive(oldPID) {
		t.Fatalf("redis-server %d alive after KillParent", oldPID)
	}
	if _, err := os.Stat(temp); err != nil {
		t.Fatalf("temp file gone after KillParent: %v", err)
	}

	s.Restart(t)
	if s.PID == oldPID {
		t.Errorf("PID unchanged by Restart: %d", s.PID)
	}
	if alive(child) {
		t.Errorf("orphaned child %d survived Restart", child)
	}
	if err := s.Client(t).Ping(ctxT(t)).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if _, err := os.Stat(temp); err != nil {
		t.Errorf("temp file gone after Restart: %v", err)
	}
	s.WaitFor(t, "no child after Restart", waitTimeout, func(i map[string]string) bool {
		return i["rdb_bgsave_in_progress"] == "0" && i["loading"] == "0"
	})
}

// TestMatrix: every build of the matrix starts as the redis user, says what it is,
// and fails a save under a fork fault with the wording its own log uses.
func TestMatrix(t *testing.T) {
	t.Parallel()
	want := map[string]string{"redis-7.0": "redis_version:7.0.", "valkey-8.0": "valkey_version:8.0.", "redis-8.0": "redis_version:8.0.", "valkey-8.1": "valkey_version:8.1."}
	for _, b := range Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, Options{Build: b})
			raw, err := s.info()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(raw, want[b.Name]) {
				t.Errorf("INFO of %s does not say %q", b.Name, want[b.Name])
			}
			if got := procUID(t, s.PID); got != fmt.Sprint(s.uid) {
				t.Errorf("%s runs as uid %s, want the redis user's %d", b.Name, got, s.uid)
			}
			s.FailFork(t)
			bgsave(t, s.Client(t))
			s.WaitFor(t, "the save to fail", 10*time.Second, SaveStatus("err"))
			waitLog(t, s, "fork: Resource temporarily unavailable")
		})
	}
}
