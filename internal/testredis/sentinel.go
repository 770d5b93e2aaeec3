package testredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// sentinelWait bounds every wait for a Sentinel to reach a state.
const sentinelWait = 20 * time.Second

// ctx is a context for one Sentinel call.
func (s *Sentinel) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.t.Cleanup(cancel)
	return ctx
}

// SentinelMaster is the name the test Sentinels monitor their master under.
const SentinelMaster = "m"

// SentinelDownAfter is the Sentinels' down-after-milliseconds.
const SentinelDownAfter = 2 * time.Second

// Sentinel is a real redis-server in Sentinel mode, run as the redis user (its
// dir and conf belong to redis: Sentinel rewrites its conf at every change).
type Sentinel struct {
	t       testing.TB
	Dir     string
	Conf    string
	LogFile string
	Addr    string
	C       *redis.SentinelClient

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartSentinel starts a Sentinel monitoring masterAddr as "m" with quorum 1,
// down-after 2000 ms and failover-timeout 10000 ms; t.Cleanup kills it.
func StartSentinel(t testing.TB, masterAddr string) *Sentinel {
	t.Helper()
	RequireRoot(t)
	u, err := user.Lookup("redis")
	if err != nil {
		t.Fatalf("sentinel: look up the redis user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	mhost, mport, err := net.SplitHostPort(masterAddr)
	if err != nil {
		t.Fatalf("sentinel: master address %q: %v", masterAddr, err)
	}
	dir, err := os.MkdirTemp("", "rg-sentinel-*")
	if err != nil {
		t.Fatalf("sentinel: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) }) // registered first: runs after the kill
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("sentinel: %v", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("sentinel: chown %s: %v", dir, err)
	}
	s := &Sentinel{t: t, Dir: dir, Conf: filepath.Join(dir, "sentinel.conf"), LogFile: filepath.Join(dir, "sentinel.log")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sentinel log %s:\n%s", s.LogFile, s.Log())
		}
	})
	t.Cleanup(s.Stop)

	const attempts = 3
	for i := 1; ; i++ {
		port := FreePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %s
logfile %s
sentinel resolve-hostnames no
sentinel announce-hostnames no
sentinel monitor %s %s %s 1
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s 10000
`, port, dir, s.LogFile, SentinelMaster, mhost, mport, SentinelMaster, SentinelDownAfter.Milliseconds(), SentinelMaster)
		if err := os.WriteFile(s.Conf, []byte(conf), 0o640); err != nil {
			t.Fatalf("sentinel: write %s: %v", s.Conf, err)
		}
		if err := os.Chown(s.Conf, uid, gid); err != nil {
			t.Fatalf("sentinel: chown %s: %v", s.Conf, err)
		}
		err := s.launch()
		if err == nil {
			break
		}
		s.Stop()
		if i == attempts || !strings.Contains(s.Log(), "Address already in use") {
			t.Fatalf("sentinel: %v\nlog:\n%s", err, s.Log())
		}
	}
	s.C = redis.NewSentinelClient(&redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = s.C.Close() })
	return s
}

// launch runs `redis-server sentinel.conf --sentinel` as redis and waits for PONG.
func (s *Sentinel) launch() error {
	out, err := os.OpenFile(filepath.Join(s.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	s.cmd = exec.Command("setpriv", "--reuid=redis", "--regid=redis", "--init-groups", "--pdeathsig", "KILL",
		"redis-server", s.Conf, "--sentinel")
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start setpriv redis-server --sentinel: %w", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		s.err = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("sentinel exited during start-up: %v", s.err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sentinel on %s did not answer PING within 10s: %w", s.Addr, err)
		}
		time.Sleep(pollInterval)
	}
}

// Stop kills the Sentinel (its process group) and waits for it; t.Cleanup does
// so too.
func (s *Sentinel) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		s.t.Errorf("sentinel: kill %d: %v", s.cmd.Process.Pid, err)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("sentinel %d still running 10s after SIGKILL", s.cmd.Process.Pid)
	}
	s.cmd = nil
}

// Log is the Sentinel's log.
func (s *Sentinel) Log() string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", s.LogFile, err)
	}
	return string(b)
}

// Events returns the Sentinel log lines with the event, e.g. "+sdown master m".
func (s *Sentinel) Events(event string) []string {
	var out []string
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, " "+event+" ") {
			out = append(out, l)
		}
	}
	return out
}

// WaitEvent waits up to timeout for a log line with the event.
func (s *Sentinel) WaitEvent(event string, timeout time.Duration) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if ls := s.Events(event); len(ls) > 0 {
			return ls[0]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no %q in the Sentinel log within %s:\n%s", event, timeout, s.Log())
		}
		time.Sleep(pollInterval)
	}
}

// MasterAddr is what SENTINEL GET-MASTER-ADDR-BY-NAME m answers, host:port.
func (s *Sentinel) MasterAddr() string {
	s.t.Helper()
	hp, err := s.C.GetMasterAddrByName(s.ctx(), SentinelMaster).Result()
	if err != nil || len(hp) != 2 {
		s.t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME %s: %v %v", SentinelMaster, hp, err)
	}
	return net.JoinHostPort(hp[0], hp[1])
}

// MasterFlags is the flags field of SENTINEL MASTER m ("master", "master,s_down" ...).
func (s *Sentinel) MasterFlags() string {
	s.t.Helper()
	m, err := s.C.Master(s.ctx(), SentinelMaster).Result()
	if err != nil {
		s.t.Fatalf("SENTINEL MASTER %s: %v", SentinelMaster, err)
	}
	return m["flags"]
}

// WaitReplica waits until Sentinel knows addr as a healthy replica (flags "slave"),
// so that it has a replica to promote.
func (s *Sentinel) WaitReplica(addr string) {
	s.t.Helper()
	deadline := time.Now().Add(sentinelWait)
	var last []map[string]string
	for {
		rs, err := s.C.Replicas(s.ctx(), SentinelMaster).Result()
		if err == nil {
			last = rs
			for _, r := range rs {
				if r["name"] == addr && r["flags"] == "slave" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("Sentinel does not know %s as a healthy replica within %s (last SENTINEL REPLICAS: %v, %v)", addr, sentinelWait, last, err)
		}
		time.Sleep(pollInterval)
	}
}
