package testredis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// slowChildKeys keys at slowChildDelayUS each keep a fork child alive for about 10 s.
	slowChildKeys    = 100
	slowChildDelayUS = "100000"
	childDeadline    = 10 * time.Second
	fillerName       = "rg-filler"
	liftedTmpfsSize  = "64m"
	fillBatch        = 500
)

// running returns the current process, or an error when redis-server is not running.
func (s *Server) running() (*process, error) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil || p.exited() {
		return nil, errors.New("redis-server is not running")
	}
	return p, nil
}

// lifter wraps the undo step of a fault: it runs at most once, either when the test calls
// the returned func (failing the test on error) or in t.Cleanup (reporting the error).
// Call the returned func from the test's goroutine.
func lifter(t testing.TB, fault string, undo func() error) func() {
	once := sync.OnceValue(undo)
	var called atomic.Bool
	t.Cleanup(func() {
		if called.Load() {
			return
		}
		if err := once(); err != nil {
			t.Errorf("testredis: lift %s: %v", fault, err)
		}
	})
	return func() {
		t.Helper()
		called.Store(true)
		if err := once(); err != nil {
			t.Fatalf("testredis: lift %s: %v", fault, err)
		}
	}
}

// FailFork makes every fork of the server fail with EAGAIN ("fork: Resource temporarily
// unavailable") by lowering its soft RLIMIT_NPROC to 1 from the redis uid. The returned
// func restores the soft limit to the hard one; t.Cleanup does so too.
func (s *Server) FailFork(t testing.TB) (lift func()) {
	t.Helper()
	p, err := s.running()
	if err != nil {
		t.Fatalf("testredis: FailFork: %v", err)
	}
	pid := strconv.Itoa(p.pid)
	out, err := output("setpriv", append(asRedis(), "prlimit", "--pid", pid, "--nproc", "-o", "HARD", "--noheadings")...)
	if err != nil {
		t.Fatalf("testredis: FailFork: read hard nproc limit: %v", err)
	}
	hard := strings.TrimSpace(out)
	if hard == "" {
		t.Fatalf("testredis: FailFork: empty hard nproc limit for pid %s", pid)
	}
	if err := run("setpriv", append(asRedis(), "prlimit", "--pid", pid, "--nproc=1:")...); err != nil {
		t.Fatalf("testredis: FailFork: lower soft nproc limit: %v", err)
	}
	return lifter(t, "FailFork", func() error {
		if p.exited() {
			return nil // the limit died with the process
		}
		if err := run("setpriv", append(asRedis(), "prlimit", "--pid", pid, "--nproc="+hard+":")...); err != nil {
			return fmt.Errorf("restore soft nproc limit: %w", err)
		}
		return nil
	})
}

// FillDisk fills the tmpfs data directory (Options.TmpfsSize is required) with a
// root-owned filler file until writes fail with ENOSPC, so every RDB or AOF write of the
// server fails with "No space left on device". The returned func removes the filler and
// remounts the tmpfs with size=64m; t.Cleanup does so too.
func (s *Server) FillDisk(t testing.TB) (lift func()) {
	t.Helper()
	if s.opts.TmpfsSize == "" {
		t.Fatal("testredis: FillDisk needs Options.TmpfsSize (the data dir must be a tmpfs)")
	}
	filler := filepath.Join(s.DataDir, fillerName)
	lift = lifter(t, "FillDisk", func() error {
		if err := os.Remove(filler); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove filler: %w", err)
		}
		if err := run("mount", "-o", "remount,size="+liftedTmpfsSize, s.DataDir); err != nil {
			return fmt.Errorf("grow tmpfs: %w", err)
		}
		return nil
	})
	if err := fillUp(filler); err != nil {
		t.Fatalf("testredis: FillDisk: %v", err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.DataDir, &st); err != nil {
		t.Fatalf("testredis: FillDisk: statfs %s: %v", s.DataDir, err)
	}
	if st.Bavail != 0 {
		t.Fatalf("testredis: FillDisk: %d blocks still free on %s after filling", st.Bavail, s.DataDir)
	}
	return lift
}

// fillUp writes zeros to a new file until the file system is full.
func fillUp(path string) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create filler: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && !errors.Is(cerr, syscall.ENOSPC) && err == nil {
			err = fmt.Errorf("close filler: %w", cerr)
		}
	}()
	// Big chunks for speed, then page-sized ones for the rest of a partly-filled chunk.
	for _, size := range []int{1 << 16, 1 << 12} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					break
				}
				return fmt.Errorf("write filler: %w", err)
			}
		}
	}
	return nil
}

// DenyDir makes the data directory unwritable for redis (root:root, 0755), so saves fail
// with "Permission denied". The returned func restores the original owner and mode;
// t.Cleanup does so too.
func (s *Server) DenyDir(t testing.TB) (lift func()) {
	t.Helper()
	fi, err := os.Stat(s.DataDir)
	if err != nil {
		t.Fatalf("testredis: DenyDir: %v", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("testredis: DenyDir: no owner information for %s", s.DataDir)
	}
	mode := fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
	uid, gid := int(st.Uid), int(st.Gid)
	lift = lifter(t, "DenyDir", func() error {
		if err := os.Chown(s.DataDir, uid, gid); err != nil {
			return fmt.Errorf("restore owner: %w", err)
		}
		if err := os.Chmod(s.DataDir, mode); err != nil {
			return fmt.Errorf("restore mode: %w", err)
		}
		return nil
	})
	if err := os.Chown(s.DataDir, 0, 0); err != nil {
		t.Fatalf("testredis: DenyDir: chown root:root: %v", err)
	}
	if err := os.Chmod(s.DataDir, 0o755); err != nil {
		t.Fatalf("testredis: DenyDir: chmod 0755: %v", err)
	}
	return lift
}

// SlowChild makes fork children slow (CONFIG SET rdb-key-save-delay 100000, 0.1 s per
// key) and makes sure there are at least 100 keys, so a BGSAVE or AOF rewrite child lives
// about 10 s or more. It needs CONFIG (possibly renamed through Options.Args).
func (s *Server) SlowChild(t testing.TB) {
	t.Helper()
	config, err := s.command("CONFIG")
	if err != nil {
		t.Fatalf("testredis: SlowChild: %v", err)
	}
	c := s.newClient(nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		t.Fatalf("testredis: SlowChild: DBSIZE: %v", err)
	}
	if n < slowChildKeys {
		if err := s.fill(ctx, c, int(slowChildKeys-n), 16); err != nil {
			t.Fatalf("testredis: SlowChild: %v", err)
		}
	}
	if err := c.Do(ctx, config, "SET", "rdb-key-save-delay", slowChildDelayUS).Err(); err != nil {
		t.Fatalf("testredis: SlowChild: CONFIG SET rdb-key-save-delay: %v", err)
	}
}

// ChildPID waits up to timeout for a fork child of redis-server (BGSAVE, AOF rewrite) to
// appear and returns its pid.
func (s *Server) ChildPID(t testing.TB, timeout time.Duration) int {
	t.Helper()
	p, err := s.running()
	if err != nil {
		t.Fatalf("testredis: ChildPID: %v", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if kids := childrenOf(p.pid); len(kids) > 0 {
			return kids[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("testredis: no fork child of redis-server %d appeared within %s", p.pid, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// KillChild waits (up to 10 s) for a fork child of redis-server and sends it sig. Any
// signal but SIGUSR1 makes Redis record the save as failed.
func (s *Server) KillChild(t testing.TB, sig syscall.Signal) {
	t.Helper()
	pid := s.ChildPID(t, childDeadline)
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("testredis: KillChild: signal %d to %d: %v", sig, pid, err)
	}
}

// Fill adds keys new keys ("fill:<n>") with random, incompressible values of valueSize
// bytes, using pipelined SETs.
func (s *Server) Fill(t testing.TB, keys int, valueSize int) {
	t.Helper()
	c := s.newClient(nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.fill(ctx, c, keys, valueSize); err != nil {
		t.Fatalf("testredis: Fill: %v", err)
	}
}

func (s *Server) fill(ctx context.Context, c *redis.Client, keys, valueSize int) error {
	var seed [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(seed[i*8:], rand.Uint64())
	}
	rng := rand.NewChaCha8(seed)
	for done := 0; done < keys; {
		n := min(fillBatch, keys-done)
		pipe := c.Pipeline()
		for range n {
			v := make([]byte, valueSize)
			_, _ = rng.Read(v) // never fails
			pipe.Set(ctx, "fill:"+strconv.FormatInt(s.fillSeq.Add(1), 10), v, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("pipelined SET of %d keys: %w", n, err)
		}
		done += n
	}
	return nil
}

// KillRewrites SIGKILLs every AOF rewrite child of the server (process title
// redis-aof-rewrite or valkey-aof-rewrite) as soon as it appears, until the returned
// func is called (t.Cleanup calls it too), as an OOM killer does to a child that grows
// past a cgroup limit. Other children (BGSAVE) are left alone. Call SlowChild, or set a
// small rdb-key-save-delay, so a child lives long enough to be seen. The returned func
// reports how many children were killed.
func (s *Server) KillRewrites(t testing.TB) (lift func() int) {
	t.Helper()
	p, err := s.running()
	if err != nil {
		t.Fatalf("testredis: KillRewrites: %v", err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var killed atomic.Int64
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, pid := range childrenOf(p.pid) {
				if isRewriteChild(pid) && syscall.Kill(pid, syscall.SIGKILL) == nil {
					killed.Add(1)
				}
			}
		}
	}()
	undo := sync.OnceFunc(func() { close(stop); <-done })
	t.Cleanup(undo)
	return func() int { undo(); return int(killed.Load()) }
}

// isRewriteChild reports whether pid's process title names an AOF rewrite child.
func isRewriteChild(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), "-aof-rewrite")
}

// StuckMonitor opens a MONITOR that never reads its replies (fault-injection.md,
// "A runaway client"): a socket with a small receive buffer, so Redis's output
// buffer for it grows with every command. It is closed by t.Cleanup.
func (s *Server) StuckMonitor(t testing.TB) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("testredis: StuckMonitor: %v", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096); err != nil {
		_ = syscall.Close(fd)
		t.Fatalf("testredis: StuckMonitor: SO_RCVBUF: %v", err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: s.Socket}); err != nil {
		_ = syscall.Close(fd)
		t.Fatalf("testredis: StuckMonitor: connect: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if _, err := syscall.Write(fd, []byte("MONITOR\r\n")); err != nil {
		t.Fatalf("testredis: StuckMonitor: send MONITOR: %v", err)
	}
}

// Overwrite sets every key Fill made ("fill:1".."fill:<keys>") to a new random
// value of valueSize bytes, in pipelines: each page of the dataset written while a
// fork child shares it is copied (copy-on-write). It stops at the first failed
// batch (the server may be the one the OOM killer took) and returns that error.
func (s *Server) Overwrite(c *redis.Client, keys, valueSize int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 1; i <= keys; {
		pipe := c.Pipeline()
		for n := 0; n < 500 && i <= keys; n, i = n+1, i+1 {
			v := make([]byte, valueSize)
			for j := range v {
				v[j] = byte(rand.Uint32())
			}
			pipe.Set(ctx, "fill:"+strconv.Itoa(i), v, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("overwrite stopped at key %d: %w", i, err)
		}
	}
	return nil
}

// FragmentKeys is how many keys Fragment populates; a tenth of them stay.
const FragmentKeys = 500000

// Fragment leaves the allocator fragmented (fault-injection.md and issue 24's
// measured pattern): DEBUG POPULATE FragmentKeys keys ("key:<n>") of 500 bytes,
// then every key but each tenth deleted in pipelines, so most pages keep a few
// live allocations among freed ones. Measured on 7.0.15: used_memory 34 MB, RSS
// 309 MB, allocator_frag_bytes 208 MB. jemalloc's background thread gives the
// wholly empty pages back within about a minute (allocator_rss_bytes); the
// fragmented ones stay until active defrag or a restart. The server must run
// with `--enable-debug-command yes` (Options.Args).
func (s *Server) Fragment(t testing.TB) {
	t.Helper()
	// DEBUG POPULATE of 500000 keys takes seconds on a loaded machine: more
	// than go-redis's default read timeout of 3 s.
	c := s.newClient(func(o *redis.Options) { o.ReadTimeout = time.Minute })
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Do(ctx, "DEBUG", "POPULATE", FragmentKeys, "key", 500).Err(); err != nil {
		t.Fatalf("testredis: Fragment: DEBUG POPULATE (start the server with --enable-debug-command yes): %v", err)
	}
	for lo := 0; lo < FragmentKeys; lo += 1000 {
		keys := make([]string, 0, 900)
		for i := lo; i < lo+1000; i++ {
			if i%10 != 0 {
				keys = append(keys, "key:"+strconv.Itoa(i))
			}
		}
		if err := c.Del(ctx, keys...).Err(); err != nil {
			t.Fatalf("testredis: Fragment: DEL: %v", err)
		}
	}
}
