package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/check"
	"github.com/redis-guardian/redis-guardian/internal/cli"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// bgsaveWait bounds how long a test waits for Redis to record a failed BGSAVE; a slow
// child (SlowChild) lives about 10 s before it is killed, so this leaves room.
const bgsaveWait = 20 * time.Second

// runCLI calls cli.Run in-process and returns its exit code and outputs.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Outputs that take concurrent writes: go-redis has one logger for the
	// whole process, so another test's background dial may log into this
	// run's stderr while the run writes to it.
	var out, errb syncBuffer
	code = cli.Run(ctx, args, cli.Env{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// checkJSON runs `check --format json` with extra args and decodes the result.
func checkJSON(t *testing.T, args ...string) (int, check.Result, string) {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"check", "--format", "json"}, args...)...)
	var res check.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("check exit %d: decode JSON output: %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errs)
	}
	return code, res, out
}

// findingsOf returns every finding of every instance by id.
func findingsOf(res check.Result) map[string]policy.Finding {
	m := map[string]policy.Finding{}
	for _, in := range res.Instances {
		for _, f := range in.Findings {
			m[f.ID] = f
		}
	}
	return m
}

// writeFile writes content to name in a fresh temp dir with mode perm.
func writeFile(t *testing.T, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	return p
}

// instanceConfig writes a config file with one instance at addr, with extra string
// keys of the instance and its ignore_findings.
func instanceConfig(t *testing.T, addr string, extra map[string]string, ignore []string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "instances:\n  - addr: %q\n", addr)
	for k, v := range extra {
		fmt.Fprintf(&b, "    %s: %q\n", k, v)
	}
	if len(ignore) > 0 {
		b.WriteString("    ignore_findings:\n")
		for _, id := range ignore {
			fmt.Fprintf(&b, "      - %s\n", id)
		}
	}
	return writeFile(t, "config.yaml", b.String(), 0o600)
}

// hostIgnores lists the host-environment finding ids this machine triggers by its
// kernel settings, which no test Redis can change.
func hostIgnores(t *testing.T) []string {
	t.Helper()
	var ids []string
	b, err := os.ReadFile("/proc/sys/vm/overcommit_memory")
	if err != nil {
		t.Fatalf("read vm.overcommit_memory: %v", err)
	}
	if strings.TrimSpace(string(b)) != "1" {
		ids = append(ids, policy.IDOvercommitNotEnabled)
	}
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err == nil && strings.Contains(string(b), "[always]") {
		ids = append(ids, policy.IDTHPEnabled)
	}
	return ids
}

func bgsave(t *testing.T, s *testredis.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A failing fork answers with an error; the tests look at INFO.
	_ = s.Client(t).BgSave(ctx).Err()
}

func waitBgsaveErr(t *testing.T, s *testredis.Server) {
	t.Helper()
	s.WaitFor(t, "rdb_last_bgsave_status:err", bgsaveWait, testredis.SaveStatus("err"))
}

// wantMisconf asserts exit 2 and a critical misconf_rdb whose cause has every substring.
func wantMisconf(t *testing.T, code int, res check.Result, out string, causeHas ...string) policy.Finding {
	t.Helper()
	if code != check.CRITICAL {
		t.Errorf("exit %d, want %d\n%s", code, check.CRITICAL, out)
	}
	f, ok := findingsOf(res)[policy.IDMisconfRDB]
	if !ok {
		t.Fatalf("no %s finding:\n%s", policy.IDMisconfRDB, out)
	}
	if f.Severity != policy.Critical {
		t.Errorf("%s severity %q, want critical", f.ID, f.Severity)
	}
	for _, s := range causeHas {
		if !strings.Contains(f.Cause, s) {
			t.Errorf("%s cause %q does not contain %q", f.ID, f.Cause, s)
		}
	}
	return f
}

func TestCheckHealthy(t *testing.T) {
	testredis.RequireRoot(t)
	t.Parallel()
	s := testredis.Start(t, testredis.Options{Args: []string{"--maxmemory", "100mb"}})
	cfg := instanceConfig(t, s.Socket, nil, hostIgnores(t))

	code, res, out := checkJSON(t, "-c", cfg)
	if code != check.OK || res.Status != "OK" {
		t.Errorf("exit %d status %q, want 0 OK\n%s", code, res.Status, out)
	}
	if len(res.Instances) != 1 {
		t.Fatalf("%d instances, want 1\n%s", len(res.Instances), out)
	}
	in := res.Instances[0]
	if len(in.Findings) != 0 {
		t.Errorf("findings %v, want none\n%s", in.Findings, out)
	}
	if in.Findings == nil {
		t.Errorf("findings is null in JSON, want []")
	}
	if in.Log != s.LogFile {
		t.Errorf("log %q, want %q", in.Log, s.LogFile)
	}

	code, text, _ := runCLI(t, "check", "-c", cfg)
	if code != check.OK || !strings.HasPrefix(text, "REDIS-GUARDIAN OK - ") || !strings.Contains(strings.SplitN(text, "\n", 2)[0], "'redis_up'=1") {
		t.Errorf("text: exit %d, output:\n%s", code, text)
	}
}

func TestCheckForkFailure(t *testing.T) {
	testredis.RequireRoot(t)
	t.Parallel()
	s := testredis.Start(t, testredis.Options{})
	s.Fill(t, 10, 64)
	s.FailFork(t)
	bgsave(t, s)
	waitBgsaveErr(t, s)

	code, res, out := checkJSON(t, "--addr", s.Socket)
	wantMisconf(t, code, res, out, "fork: Resource temporarily unavailable (redis log)")

	// The text form: a plugin status line with perfdata.
	code, text, _ := runCLI(t, "check", "--addr", s.Socket)
	first, _, _ := strings.Cut(text, "\n")
	if code != check.CRITICAL || !strings.HasPrefix(first, "REDIS-GUARDIAN CRITICAL - ") || !strings.Contains(first, " | ") {
		t.Errorf("text: exit %d, first line %q", code, first)
	}
	if !strings.Contains(first, policy.IDMisconfRDB) {
		t.Errorf("text: first line %q does not name %s", first, policy.IDMisconfRDB)
	}
}

func TestCheckDiskFull(t *testing.T) {
	testredis.RequireRoot(t)
	t.Parallel()
	s := testredis.Start(t, testredis.Options{TmpfsSize: "256k"})
	s.Fill(t, 20, 1024)
	s.FillDisk(t)
	bgsave(t, s)
	waitBgsaveErr(t, s)

	code, res, out := checkJSON(t, "--addr", s.Socket)
	f := wantMisconf(t, code, res, out, "No space left on device")
	if _, ok := findingsOf(res)[policy.IDSnapshotWontFit]; !ok && !strings.Contains(f.Cause, "free") {
		t.Errorf("neither %s nor free-space evidence in cause %q\n%s", policy.IDSnapshotWontFit, f.Cause, out)
	}
}

func TestCheckPermissionDenied(t *testing.T) {
	testredis.RequireRoot(t)
	t.Parallel()
	s := testredis.Start(t, testredis.Options{})
	s.Fill(t, 10, 64)
	s.DenyDir(t)
	bgsave(t, s)
	waitBgsaveErr(t, s)

	code, res, out := checkJSON(t, "--addr", s.Socket)
	wantMisconf(t, code, res, out, "Permission denied")
	f, ok := findingsOf(res)[policy.IDDatadirNotWritable]
	if !ok {
		t.Fatalf("no %s finding:\n%s", policy.IDDatadirNotWritable, out)
	}
	if f.Severity != policy.Critical {
		t.Errorf("%s severity %q, want critical", f.ID, f.Severity)
	}
}

func TestCheckChildKilled(t *testing.T) {
	testredis.RequireRoot(t)
	t.Parallel()
	s := testredis.Start(t, testredis.Options{})
	s.SlowChild(t)
	bgsave(t, s)
	s.KillChild(t, syscall.SIGKILL)
	waitBgsaveErr(t, s)

	code, res, out := checkJSON(t, "--addr", s.Socket)
	wantMisconf(t, code, res, out, "signal 9")
}

// silentServer accepts TCP connections and never answers, like a hung Redis.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return l.Addr().String()
}

func TestCheckNothingListening(t *testing.T) {
	t.Parallel()
	for name, addr := range map[string]string{
		"socket": filepath.Join(t.TempDir(), "absent.sock"),
		"tcp":    fmt.Sprintf("127.0.0.1:%d", testredis.FreePort(t)),
		"silent": silentServer(t),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, res, out := checkJSON(t, "--addr", addr, "--timeout", "2s")
			// A check that ignored its deadline would hang on the silent server:
			// the bound catches that, with room for a loaded machine.
			if took := time.Since(start); took >= 10*time.Second {
				t.Errorf("check took %s with --timeout 2s", took)
			}
			if code != check.CRITICAL {
				t.Errorf("exit %d, want %d\n%s", code, check.CRITICAL, out)
			}
			fs := findingsOf(res)
			f, ok := fs[policy.IDRedisUnreachable]
			if !ok || len(fs) != 1 {
				t.Fatalf("want only %s, got:\n%s", policy.IDRedisUnreachable, out)
			}
			if f.Severity != policy.Critical {
				t.Errorf("severity %q, want critical", f.Severity)
			}
		})
	}
}

func TestCheckAuth(t *testing.T) {
	testredis.RequireRoot(t)
	t.Parallel()
	s := testredis.Start(t, testredis.Options{Args: []string{"--requirepass", "secret"}})

	t.Run("wrong", func(t *testing.T) {
		t.Parallel()
		pw := writeFile(t, "password", "wrong\n", 0o600)
		cfg := instanceConfig(t, s.Socket, map[string]string{"password_file": pw}, nil)
		code, res, out := checkJSON(t, "-c", cfg)
		if code != check.CRITICAL {
			t.Errorf("exit %d, want %d\n%s", code, check.CRITICAL, out)
		}
		f, ok := findingsOf(res)[policy.IDAuthFailed]
		if !ok {
			t.Fatalf("no %s:\n%s", policy.IDAuthFailed, out)
		}
		if f.Severity != policy.Critical {
			t.Errorf("severity %q, want critical", f.Severity)
		}
	})
	t.Run("right", func(t *testing.T) {
		t.Parallel()
		pw := writeFile(t, "password", "secret\n", 0o600)
		cfg := instanceConfig(t, s.Socket, map[string]string{"password_file": pw}, nil)
		_, res, out := checkJSON(t, "-c", cfg)
		fs := findingsOf(res)
		for _, id := range []string{policy.IDAuthFailed, policy.IDRedisUnreachable, policy.IDCommandUnavailable} {
			if _, ok := fs[id]; ok {
				t.Errorf("unexpected %s:\n%s", id, out)
			}
		}
		if strings.Contains(out, "secret") {
			t.Errorf("the password appears in the output:\n%s", out)
		}
	})
}

func TestCheckConfigRenamed(t *testing.T) {
	testredis.RequireRoot(t)
	t.Parallel()

	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		s := testredis.Start(t, testredis.Options{Args: []string{"--rename-command", "CONFIG", ""}})
		code, res, out := checkJSON(t, "--addr", s.Socket)
		if code < check.WARNING || code > check.CRITICAL {
			t.Errorf("exit %d, want 1 or 2\n%s", code, out)
		}
		if _, ok := findingsOf(res)[policy.IDCommandUnavailable]; !ok {
			t.Errorf("no %s:\n%s", policy.IDCommandUnavailable, out)
		}
	})
	t.Run("renamed", func(t *testing.T) {
		t.Parallel()
		s := testredis.Start(t, testredis.Options{Args: []string{"--rename-command", "CONFIG", "XCONFIG"}})
		cfg := instanceConfig(t, s.Socket, map[string]string{"config_command": "XCONFIG"}, nil)
		_, res, out := checkJSON(t, "-c", cfg)
		if _, ok := findingsOf(res)[policy.IDCommandUnavailable]; ok {
			t.Errorf("unexpected %s:\n%s", policy.IDCommandUnavailable, out)
		}
		if got := res.Instances[0].Log; got != s.LogFile {
			t.Errorf("log %q, want %q (settings read through XCONFIG)", got, s.LogFile)
		}
	})
}

func TestCheckACLWithoutConfig(t *testing.T) {
	testredis.RequireRoot(t)
	t.Parallel()
	s := testredis.Start(t, testredis.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Client(t).Do(ctx, "ACL", "SETUSER", "guard", "on", ">pw", "~*", "+@all", "-config").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	pw := writeFile(t, "password", "pw", 0o600)
	cfg := instanceConfig(t, s.Socket, map[string]string{"username": "guard", "password_file": pw}, nil)

	code, res, out := checkJSON(t, "-c", cfg)
	if code < check.WARNING || code > check.CRITICAL {
		t.Errorf("exit %d, want 1 or 2\n%s", code, out)
	}
	fs := findingsOf(res)
	f, ok := fs[policy.IDCommandUnavailable]
	if !ok {
		t.Fatalf("no %s:\n%s", policy.IDCommandUnavailable, out)
	}
	if !strings.Contains(f.Cause, "NOPERM") {
		t.Errorf("cause %q does not say NOPERM", f.Cause)
	}
	if _, ok := fs[policy.IDAuthFailed]; ok {
		t.Errorf("unexpected %s:\n%s", policy.IDAuthFailed, out)
	}
}

func TestCheckUsageErrors(t *testing.T) {
	t.Parallel()
	unknownKey := writeFile(t, "bad.yaml", "instances:\n  - addr: /tmp/x.sock\n    pasword_file: /nope\n", 0o600)
	for name, args := range map[string][]string{
		"format":       {"check", "--format", "xml"},
		"flag":         {"check", "--no-such-flag"},
		"timeout":      {"check", "--timeout", "0s"},
		"bad config":   {"check", "-c", unknownKey},
		"missing file": {"check", "-c", filepath.Join(t.TempDir(), "absent.yaml")},
		"bad addr":     {"check", "--addr", "localhost"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := runCLI(t, args...)
			if code != check.UNKNOWN {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, check.UNKNOWN, out, errs)
			}
			// An unknown flag is reported by package flag on stderr only (see the report).
			if name != "flag" && !strings.HasPrefix(out, "REDIS-GUARDIAN UNKNOWN") {
				t.Errorf("stdout %q does not start with REDIS-GUARDIAN UNKNOWN", out)
			}
		})
	}
}

// A malformed --timeout is an error naming the value, never a silent default.
func TestCheckMalformedTimeout(t *testing.T) {
	t.Parallel()
	code, out, errs := runCLI(t, "check", "--timeout", "soon")
	if code != check.UNKNOWN {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, check.UNKNOWN, out, errs)
	}
	if !strings.Contains(errs, "soon") {
		t.Errorf("stderr does not name the bad value:\n%s", errs)
	}
}
