package daemon_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestRunSurvivesHostileReplies: the real daemon watching an address where
// something else answers (a process squatting the port while redis-server
// restarts) with headers announcing gigabytes raises redis_reply_invalid, keeps
// ticking on new connections, stays small, and stops cleanly. Before the reply
// bounds it grew to gigabytes on the first header, and the second made it panic
// and exit.
func TestRunSurvivesHostileReplies(t *testing.T) {
	t.Parallel()
	replies := []string{"$2147483647\r\n", "$9223372036854775807\r\n", "*2147483647\r\n", "-ERR " + strings.Repeat("x", 1<<20) + "\r\n"}
	var fake *testredis.Fake
	fake = testredis.StartFake(t, func(args []string) string {
		if strings.EqualFold(args[0], "HELLO") {
			return "-ERR unknown command 'HELLO'\r\n" // as Redis 5: INFO gets the bytes below
		}
		return replies[int(fake.Conns()-1)%len(replies)] // each connection the next one
	})
	stateDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{"squatted", fake.Addr})
	p := startBinary(t, "-c", cfg)

	p.waitOutput(regexp.MustCompile(`"finding":\s*"` + policy.IDRedisReplyInvalid + `"`))
	// Every reply in turn, twice over: each refused reply drops its connection.
	deadline := time.Now().Add(waitLong)
	for fake.Conns() < int64(2*len(replies)+1) {
		select {
		case <-p.done:
			t.Fatalf("redis-guardian exited (%v) after %d connections:\n%.4000s", p.err, fake.Conns(), p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d connections within %s:\n%.4000s", fake.Conns(), waitLong, p.out.String())
		}
		time.Sleep(poll)
	}
	hwm := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS of the guardian after %d refused replies: %d MiB", fake.Conns(), hwm>>20)
	if hwm > 128<<20 {
		t.Errorf("peak RSS %d MiB, want far below what the headers announced (128 MiB at most)", hwm>>20)
	}
	// The finding is logged once, when raised, with the first reply's header.
	out := p.out.String()
	if !strings.Contains(out, `invalid reply from redis: \"$2147483647\"`) || strings.Contains(out, "panic") {
		t.Errorf("the log does not name the first header, or shows a panic:\n%.4000s", out)
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("redis-guardian after SIGTERM: %v\n%.4000s", err, p.out.String())
	}
	if !eventRE(string(events.Stopped)).MatchString(p.out.String()) {
		t.Errorf("no clean stop:\n%.4000s", p.out.String())
	}
}

// peakRSS reads VmHWM of a process, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatalf("read the guardian's status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
