// Package testredis starts a real, private redis-server for integration tests and injects
// real faults into it (fork failure, disk full, permission denied, killed children).
//
// Every server runs as the unprivileged redis user, so that permissions and process limits
// apply to it; that needs root. Helpers that cannot get root fail the test when CI=true
// and skip it otherwise (see RequireRoot). Everything a helper sets up is undone through
// t.Cleanup, also when the test fails.
package testredis

import (
	"bytes"
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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	redisUser      = "redis"
	startDeadline  = 10 * time.Second
	stopDeadline   = 10 * time.Second
	pollInterval   = 20 * time.Millisecond
	defaultSave    = "900 1"
	logTailOnError = 30
)

// Options says how Start configures a server. The zero value is a unix-socket-only server
// with `save "900 1"`, no AOF and a log file.
type Options struct {
	// Save is the value of the save option; empty means the default "900 1".
	Save string
	// NoSave starts the server with `save ""` (no save points, so no RDB MISCONF).
	NoSave bool
	// AppendOnly turns on the AOF.
	AppendOnly bool
	// TmpfsSize, e.g. "256k", mounts a tmpfs of that size (owned by redis) as the data
	// directory, for disk-full tests (see FillDisk).
	TmpfsSize string
	// BlockDisk, e.g. "64M", puts the data directory on an ext4 file system of that
	// size on a loop device: a real block device, whose writes SlowDisk throttles.
	BlockDisk string
	// Args are extra redis-server arguments, appended last so that they win,
	// e.g. "--requirepass", "x" or "--rename-command", "CONFIG", "".
	Args []string
	// TCP makes the server also listen on a free 127.0.0.1 port (never 6379).
	TCP bool
	// LogToStdout starts the server with --logfile "" and captures its stdout in
	// Dir/stdout.log, which LogFile then names.
	LogToStdout bool
	// ConfigText, when set, is written to Dir/redis.conf (owned by redis, so CONFIG
	// REWRITE can replace it) and the server starts from that file; the options
	// above still win, as command-line arguments do.
	ConfigText string
	// Build is the server to run (see Matrix); the zero value is HostRedis.
	Build Build
	// MemCgroup, when set, is the memory cgroup the server runs in from its
	// start (see MemoryCgroup), and every fork child with it.
	MemCgroup *MemCgroup
}

// Server is a running redis-server owned by one test. Its fields are read-only for callers.
type Server struct {
	// Dir is the base temporary directory (0755, owned by redis); it holds the socket and
	// the log, so faults on DataDir never hit them.
	Dir string
	// DataDir is the server's dir (Dir/data), a tmpfs when Options.TmpfsSize is set.
	DataDir string
	// Socket is the path of the unix socket.
	Socket string
	// LogFile is the path of the server's log (Dir/stdout.log with LogToStdout).
	LogFile string
	// Addr is "127.0.0.1:port" when Options.TCP is set, else "".
	Addr string
	// PID is the process id of the current redis-server (it changes on Restart).
	PID int
	// ConfigFile is Dir/redis.conf when Options.ConfigText is set, else "".
	ConfigFile string

	opts     Options
	uid, gid int
	password string
	renamed  map[string]string // upper-case command name -> name to send ("" = disabled)
	bound    string            // the bind mount of Dir inside the build's root, "" for none
	blockDev string            // the loop device of Options.BlockDisk
	fillSeq  atomic.Int64

	mu   sync.Mutex
	proc *process
}

// process is one launched redis-server.
type process struct {
	pid  int
	done chan struct{} // closed when the process has been waited for
	err  error         // wait result, valid after done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// RequireRoot stops the test unless it runs as root on a machine with the redis user,
// redis-server and the tools the faults need. Under CI=true that is a failure, elsewhere
// a skip with the reason.
func RequireRoot(t testing.TB) {
	t.Helper()
	if err := checkPrerequisites(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testredis: %v (required under CI=true)", err)
		}
		t.Skipf("testredis: %v", err)
	}
}

func checkPrerequisites() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root to run redis-server as the redis user, mount tmpfs and chown")
	}
	if _, err := user.Lookup(redisUser); err != nil {
		return fmt.Errorf("look up user %q (install redis-server): %w", redisUser, err)
	}
	for _, bin := range []string{"redis-server", "setpriv", "prlimit", "mount", "umount"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("find %s: %w", bin, err)
		}
	}
	return nil
}

// Start starts a private redis-server as the redis user, waits until it answers PING and
// registers its shutdown and the removal of its directories with t.Cleanup. The server is
// not daemonized: it is a child of the test process and dies with it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	RequireRoot(t)

	uid, gid, err := lookupRedis()
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	if opts.Build.Name == "" {
		opts.Build = HostRedis
	}
	s := &Server{opts: opts, uid: uid, gid: gid}
	s.password, s.renamed = parseArgs(opts.Args)

	dir, err := os.MkdirTemp("", "rg-test-*")
	if err != nil {
		t.Fatalf("testredis: create temp dir: %v", err)
	}
	s.Dir = dir
	s.DataDir = filepath.Join(dir, "data")
	s.Socket = filepath.Join(dir, "redis.sock")
	s.LogFile = filepath.Join(dir, "redis.log")
	if opts.LogToStdout {
		s.LogFile = filepath.Join(dir, "stdout.log")
	}
	mounted := false
	// Registered first so it runs last: after the process is dead and faults are lifted.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testredis: log tail of %s:\n%s", s.LogFile, s.LogTail(logTailOnError))
		}
		if s.bound != "" {
			// Lazily: the bind holds the data dir's tmpfs, unmounted just below.
			if err := run("umount", "-R", "-l", s.bound); err != nil {
				t.Errorf("testredis: unmount %s: %v", s.bound, err)
			} else if err := os.Remove(s.bound); err != nil {
				t.Errorf("testredis: %v", err)
			}
		}
		if mounted {
			if err := unmount(s.DataDir); err != nil {
				t.Errorf("testredis: %v", err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testredis: remove %s: %v", dir, err)
		}
	})

	if err := prepareDir(dir, 0o755, uid, gid); err != nil {
		t.Fatalf("testredis: %v", err)
	}
	if err := os.Mkdir(s.DataDir, 0o750); err != nil {
		t.Fatalf("testredis: create data dir: %v", err)
	}
	if err := prepareDir(s.DataDir, 0o750, uid, gid); err != nil {
		t.Fatalf("testredis: %v", err)
	}
	if opts.ConfigText != "" {
		s.ConfigFile = filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(s.ConfigFile, []byte(opts.ConfigText), 0o640); err != nil {
			t.Fatalf("testredis: write config file: %v", err)
		}
		if err := os.Chown(s.ConfigFile, uid, gid); err != nil {
			t.Fatalf("testredis: chown config file: %v", err)
		}
	}
	if opts.BlockDisk != "" {
		if err := s.mountBlockDisk(t); err != nil {
			t.Fatalf("testredis: %v", err)
		}
	}
	if opts.TmpfsSize != "" {
		o := fmt.Sprintf("size=%s,uid=%d,gid=%d,mode=0750", opts.TmpfsSize, uid, gid)
		if err := run("mount", "-t", "tmpfs", "-o", o, "tmpfs", s.DataDir); err != nil {
			t.Fatalf("testredis: mount tmpfs on data dir: %v", err)
		}
		mounted = true
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("testredis: %v", err)
		}
	})

	// A free port can be taken by someone else before redis-server binds it: try again.
	const attempts = 3
	for i := 1; ; i++ {
		if opts.TCP {
			port, err := freePort()
			if err != nil {
				t.Fatalf("testredis: %v", err)
			}
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		err := s.launch()
		if err == nil {
			return s
		}
		if !opts.TCP || i == attempts || !strings.Contains(s.LogTail(logTailOnError), "Address already in use") {
			t.Fatalf("testredis: start redis-server: %v\nlog tail of %s:\n%s", err, s.LogFile, s.LogTail(logTailOnError))
		}
		if err := s.stop(); err != nil {
			t.Fatalf("testredis: %v", err)
		}
	}
}

func lookupRedis() (uid, gid int, err error) {
	u, err := user.Lookup(redisUser)
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %q: %w", redisUser, err)
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, fmt.Errorf("parse uid of %q: %w", redisUser, err)
	}
	if gid, err = strconv.Atoi(u.Gid); err != nil {
		return 0, 0, fmt.Errorf("parse gid of %q: %w", redisUser, err)
	}
	return uid, gid, nil
}

func prepareDir(dir string, mode os.FileMode, uid, gid int) error {
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("chown %s to redis: %w", dir, err)
	}
	return nil
}

// parseArgs picks out of extra redis-server arguments what the helpers' own clients need:
// the password and renamed commands.
func parseArgs(args []string) (password string, renamed map[string]string) {
	renamed = map[string]string{}
	for i := 0; i < len(args); i++ {
		switch strings.ToLower(args[i]) {
		case "--requirepass":
			if i+1 < len(args) {
				password = args[i+1]
				i++
			}
		case "--rename-command":
			if i+2 < len(args) {
				renamed[strings.ToUpper(args[i+1])] = args[i+2]
				i += 2
			}
		}
	}
	return password, renamed
}

// command returns the name under which the server knows cmd, or an error if it was
// renamed to "" (disabled) by Options.Args.
func (s *Server) command(cmd string) (string, error) {
	name, ok := s.renamed[strings.ToUpper(cmd)]
	if !ok {
		return cmd, nil
	}
	if name == "" {
		return "", fmt.Errorf("command %s is disabled by --rename-command in Options.Args", cmd)
	}
	return name, nil
}

// FreePort returns a free 127.0.0.1 TCP port (never 6379) for a test's own listener.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// SaveStatus is a WaitFor condition: no BGSAVE runs and the last one ended with
// status ("ok" or "err").
func SaveStatus(status string) func(info map[string]string) bool {
	return func(i map[string]string) bool {
		return i["rdb_bgsave_in_progress"] == "0" && i["rdb_last_bgsave_status"] == status
	}
}

func freePort() (int, error) {
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("close probe listener: %w", err)
		}
		if port != 6379 {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: kept getting 6379")
}

func (s *Server) serverArgs() []string {
	save := defaultSave
	if s.opts.Save != "" {
		save = s.opts.Save
	}
	if s.opts.NoSave {
		save = ""
	}
	appendonly := "no"
	if s.opts.AppendOnly {
		appendonly = "yes"
	}
	port := "0"
	if s.Addr != "" {
		_, p, _ := net.SplitHostPort(s.Addr)
		port = p
	}
	logfile := s.LogFile
	if s.opts.LogToStdout {
		logfile = ""
	}
	var args []string
	if s.ConfigFile != "" {
		args = append(args, s.ConfigFile)
	}
	args = append(args,
		"--daemonize", "no",
		"--port", port,
		"--bind", "127.0.0.1",
		"--unixsocket", s.Socket,
		"--unixsocketperm", "777",
		"--dir", s.DataDir,
		"--logfile", logfile,
		"--save", save,
		"--appendonly", appendonly,
		"--pidfile", "",
	)
	return append(args, s.opts.Args...)
}

// serverCommand builds the command that runs the server as the redis user: setpriv
// execs it, so the pid is the server's own; changing the uid clears the
// parent-death signal, so setpriv sets it again. A build in a Debian root runs
// under chroot, with the test's directory bind-mounted at the same path inside, so
// the guardian on the host and the server see the same files.
func (s *Server) serverCommand() (*exec.Cmd, error) {
	name, args, err := s.serverArgv()
	if err != nil {
		return nil, err
	}
	if c := s.opts.MemCgroup; c != nil {
		name, args = c.joinCgroup(name, args)
	}
	return exec.Command(name, args...), nil
}

// serverArgv is the program and arguments serverCommand runs.
func (s *Server) serverArgv() (string, []string, error) {
	b := s.opts.Build
	if b.Root == "" {
		args := append(asRedis(), "--pdeathsig", "KILL", b.Bin)
		return "setpriv", append(args, s.serverArgs()...), nil
	}
	if s.bound == "" {
		inside := filepath.Join(b.Root, s.Dir)
		if err := os.MkdirAll(inside, 0o755); err != nil {
			return "", nil, fmt.Errorf("create %s: %w", inside, err)
		}
		if err := run("mount", "--rbind", s.Dir, inside); err != nil {
			return "", nil, fmt.Errorf("bind %s into %s: %w", s.Dir, b.Root, err)
		}
		s.bound = inside
	}
	args := []string{b.Root, "setpriv", "--reuid=" + strconv.Itoa(s.uid), "--regid=" + strconv.Itoa(s.gid), "--clear-groups",
		"--pdeathsig", "KILL", b.Bin}
	return "chroot", append(args, s.serverArgs()...), nil
}

// asRedis is the setpriv prefix that runs a command as the redis user.
func asRedis() []string {
	return []string{"--reuid=" + redisUser, "--regid=" + redisUser, "--init-groups"}
}

// launch starts the server and waits until it answers PING.
func (s *Server) launch() error {
	cmd, err := s.serverCommand()
	if err != nil {
		return err
	}
	cmd.Dir = s.Dir
	// Own process group: fork children that outlive a killed parent can still be found
	// and killed through it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	outName := "stderr.log"
	if s.opts.LogToStdout {
		outName = "stdout.log"
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, outName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", outName, err)
	}
	defer out.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.opts.Build.Name, err)
	}
	p := &process{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.PID = p.pid
	s.mu.Unlock()
	return s.waitReady(p)
}

func (s *Server) waitReady(p *process) error {
	c := s.newClient(func(o *redis.Options) {
		o.DialTimeout = 500 * time.Millisecond
		o.ReadTimeout = 500 * time.Millisecond
		o.MaxRetries = -1
	})
	defer c.Close()
	deadline := time.Now().Add(startDeadline)
	var lastErr error
	for {
		if p.exited() {
			stderr, _ := os.ReadFile(filepath.Join(s.Dir, "stderr.log"))
			return fmt.Errorf("redis-server (pid %d) exited during start-up: %w; output: %s", p.pid, p.err, bytes.TrimSpace(stderr))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		pong, err := c.Ping(ctx).Result()
		cancel()
		if err == nil && pong == "PONG" {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server (pid %d) did not answer PING within %s: %w", p.pid, startDeadline, lastErr)
		}
		time.Sleep(pollInterval)
	}
}

// stop kills the current redis-server with its whole process group (including orphaned
// fork children) and waits until they are gone.
func (s *Server) stop() error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", p.pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopDeadline):
		return fmt.Errorf("redis-server (pid %d) still running %s after SIGKILL", p.pid, stopDeadline)
	}
	deadline := time.Now().Add(stopDeadline)
	for {
		left := groupMembers(p.pid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of group %d still running %s after SIGKILL", left, p.pid, stopDeadline)
		}
		time.Sleep(pollInterval)
	}
}

// Restart kills the server (SIGKILL, with any fork child left over) and starts it again
// with the same options, directories and port. PID changes.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("testredis: restart: %v", err)
	}
	if err := s.launch(); err != nil {
		t.Fatalf("testredis: restart redis-server: %v\nlog tail of %s:\n%s", err, s.LogFile, s.LogTail(logTailOnError))
	}
}

// KillParent sends SIGKILL to redis-server itself, as a crash or an OOM kill would, and
// waits until it is dead. A fork child keeps running (orphaned) and temp files stay in
// DataDir; Restart and the cleanup kill what is left.
func (s *Server) KillParent(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil || p.exited() {
		t.Fatal("testredis: KillParent: redis-server is not running")
	}
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("testredis: kill redis-server %d: %v", p.pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopDeadline):
		t.Fatalf("testredis: redis-server %d still running %s after SIGKILL", p.pid, stopDeadline)
	}
}

// newClient returns a go-redis client on the unix socket with the server's password.
func (s *Server) newClient(tweak func(*redis.Options)) *redis.Client {
	o := &redis.Options{
		Network:         "unix",
		Addr:            s.Socket,
		Password:        s.password,
		DisableIdentity: true, // keep CLIENT SETINFO out of the server's error stats
	}
	if tweak != nil {
		tweak(o)
	}
	return redis.NewClient(o)
}

// Client returns a go-redis client connected through the unix socket (with the password
// from Options.Args), closed by t.Cleanup.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := s.newClient(nil)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// LogTail returns the last n lines of the server's log, or a note saying why it cannot.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Info returns the server's default INFO sections as a field -> value map.
func (s *Server) Info(t testing.TB) map[string]string {
	t.Helper()
	raw, err := s.info()
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	return parseInfo(raw)
}

func (s *Server) info() (string, error) {
	c := s.newClient(func(o *redis.Options) { o.MaxRetries = -1 })
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	raw, err := c.Info(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("INFO: %w", err)
	}
	return raw, nil
}

// WaitFor polls INFO until cond holds for its fields, and fails the test with the last
// Persistence section when timeout passes first. what names the awaited state.
func (s *Server) WaitFor(t testing.TB, what string, timeout time.Duration, cond func(info map[string]string) bool) {
	t.Helper()
	c := s.newClient(func(o *redis.Options) { o.MaxRetries = -1 })
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var lastRaw string
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		raw, err := c.Info(ctx).Result()
		cancel()
		if err == nil {
			lastRaw, lastErr = raw, nil
			if cond(parseInfo(raw)) {
				return
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("testredis: timed out after %s waiting for %s (last INFO error: %v)\nlast INFO persistence:\n%s\nlog tail:\n%s",
				timeout, what, lastErr, infoSection(lastRaw, "Persistence"), s.LogTail(10))
		}
		time.Sleep(pollInterval)
	}
}

// run runs a command and returns its combined output in the error when it fails.
func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// unmount unmounts dir, lazily if it is still busy.
func unmount(dir string) error {
	err := run("umount", dir)
	if err == nil {
		return nil
	}
	if err2 := run("umount", "-l", dir); err2 != nil {
		return fmt.Errorf("unmount %s: %w (lazy: %w)", dir, err, err2)
	}
	return nil
}

// RedisOwnedDir makes a directory owned by the redis user (mode 0750), as the
// package's state dir is, and returns it with redis's uid and gid: what that uid
// plants there is input to root's restore. It needs root (RequireRoot).
func RedisOwnedDir(t testing.TB) (dir string, uid, gid int) {
	t.Helper()
	RequireRoot(t)
	uid, gid, err := lookupRedis()
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	dir = filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := prepareDir(dir, 0o750, uid, gid); err != nil {
		t.Fatalf("testredis: %v", err)
	}
	return dir, uid, gid
}
