package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/check"
	"github.com/redis-guardian/redis-guardian/internal/cli"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// secret is the password the tests below put in addresses; no output may hold it.
const secret = "hunter2-S3cret"

// syncBuffer is a bytes.Buffer that a running daemon writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// noSecret fails the test when any output prints the password.
func noSecret(t *testing.T, what string, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if strings.Contains(o, secret) {
			t.Errorf("%s prints the password:\n%s", what, o)
		}
	}
}

// TestAddrParseErrorHidesPassword: a redis:// URL with a password that does not
// parse is named in the error every command prints (check to the monitoring
// system's screen); go's URL parser quotes the URL whole, password included.
func TestAddrParseErrorHidesPassword(t *testing.T) {
	t.Parallel()
	bad := "redis://u:" + secret + "@127.0.0.1:port"
	redacted := "redis://u:xxxxx@127.0.0.1:port"
	cfgFile := instanceConfig(t, bad, nil, nil)
	state := t.TempDir()
	for _, args := range [][]string{
		{"check", "--addr", bad},
		{"check", "-c", cfgFile},
		{"check-config", "-c", cfgFile},
		{"run", "--addr", bad, "--state-dir", state, "--metrics-listen", ""},
		{"restore", "--addr", bad, "--state-dir", state},
		{"status", "-c", cfgFile, "--state-dir", state},
	} {
		code, out, errs := runCLI(t, args...)
		what := strings.Join(args[:1], " ")
		if code == 0 {
			t.Errorf("%s accepted the bad address: exit 0\nstdout:\n%s\nstderr:\n%s", what, out, errs)
		}
		noSecret(t, what, out, errs)
		if !strings.Contains(out+errs, redacted+`": invalid port ":port" after host`) {
			t.Errorf("%s does not name the redacted address and the fault:\nstdout:\n%s\nstderr:\n%s", what, out, errs)
		}
	}
	// check's first line is what Nagios shows.
	code, out, _ := runCLI(t, "check", "--addr", bad)
	if code != check.UNKNOWN || !strings.HasPrefix(out, "REDIS-GUARDIAN UNKNOWN - --addr: "+redacted+": parse address URL: parse \""+redacted+"\"") {
		t.Errorf("check --addr BAD: exit %d, stdout %q", code, out)
	}
}

// TestAddrPasswordFlagWarns: a password in --addr is readable by every local user
// in ps; the guardian says so (without printing it) and still runs the check.
func TestAddrPasswordFlagWarns(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: the check runs and finds Redis unreachable.
	addr := fmt.Sprintf("redis://u:%s@127.0.0.1:%d", secret, testredis.FreePort(t))
	code, out, errs := runCLI(t, "check", "--addr", addr, "--timeout", "2s")
	if code != check.CRITICAL {
		t.Errorf("exit %d, want %d (unreachable)\nstdout:\n%s\nstderr:\n%s", code, check.CRITICAL, out, errs)
	}
	if !strings.Contains(errs, "warning: --addr: the URL carries a password, which every local user can read in ps") {
		t.Errorf("no warning about the password in --addr; stderr:\n%s", errs)
	}
	noSecret(t, "check --addr", out, errs)

	code, _, errs = runCLI(t, "check", "--addr", "rediss://127.0.0.1:1?skip_verify=true", "--timeout", "2s")
	if code == check.UNKNOWN || !strings.Contains(errs, "warning: --addr: skip_verify=true: the server certificate is not verified") {
		t.Errorf("exit %d; no warning about skip_verify; stderr:\n%s", code, errs)
	}
}

// TestPprofWildcardWarns: --pprof-listen on every interface serves profiles and
// the command line to anyone; run says so at start.
func TestPprofWildcardWarns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb syncBuffer
	done := make(chan int, 1)
	args := []string{"run", "--addr", filepath.Join(t.TempDir(), "none.sock"), "--metrics-listen", "",
		"--pprof-listen", ":0", "--state-dir", t.TempDir(), "--dry-run", "--log-format", "json"}
	go func() { done <- cli.Run(ctx, args, cli.Env{Stdout: &bytes.Buffer{}, Stderr: &errb}) }()
	waitOutput(t, &errb, `"event":"started"`)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run exited %d\n%s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop within 20s of cancel")
	}
	if !strings.Contains(errb.String(), "warning: --pprof-listen: :0 listens on every interface: /debug/pprof") {
		t.Errorf("no warning about pprof on every interface; stderr:\n%s", errb.String())
	}
}

// waitOutput waits until the buffer holds want.
func waitOutput(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 20s; output:\n%s", want, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadErrorHidesPassword: a SIGHUP that reads a config whose address does
// not parse logs reload_failed (to the journal) with the parser's error: without
// the password. Not parallel: the SIGHUP goes to the whole test process, and only
// this test's run must be listening.
func TestReloadErrorHidesPassword(t *testing.T) {
	cfgFile := instanceConfig(t, filepath.Join(t.TempDir(), "none.sock"), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb syncBuffer
	done := make(chan int, 1)
	args := []string{"run", "-c", cfgFile, "--metrics-listen", "", "--state-dir", t.TempDir(), "--dry-run", "--log-format", "json"}
	go func() { done <- cli.Run(ctx, args, cli.Env{Stdout: &bytes.Buffer{}, Stderr: &errb}) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Error("run did not stop within 20s of cancel")
			}
		})
	}
	defer stop()
	waitOutput(t, &errb, `"event":"started"`)

	bad := "redis://u:" + secret + "@127.0.0.1:port"
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf("instances:\n  - addr: %q\n", bad)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, &errb, `"event":"reload_failed"`)
	stop()
	out := errb.String()
	noSecret(t, "reload_failed", out)
	if !strings.Contains(out, `redis://u:xxxxx@127.0.0.1:port`) {
		t.Errorf("reload_failed does not name the redacted address:\n%s", out)
	}
}
