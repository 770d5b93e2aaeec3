package cli_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/redis-guardian/redis-guardian/internal/check"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestCheckHostileReplies: `check` against a peer that announces a reply of
// gigabytes (squatting Redis's port during a restart) reports the critical
// finding redis_reply_invalid, naming the header, with Nagios's CRITICAL exit
// code; it neither panics nor allocates what the header announced. Before the
// bounds, go-redis allocated 2 GiB for the first reply, panicked on the second
// (makeslice: len out of range) and died out of memory on the third.
// Not parallel: it measures the allocations of the whole process.
func TestCheckHostileReplies(t *testing.T) {
	for _, c := range []struct{ name, reply, header string }{
		{"bulk of 2 GiB", "$2147483647\r\n", "$2147483647"},
		{"bulk of MaxInt64", "$9223372036854775807\r\n", "$9223372036854775807"},
		{"array of 2^31", "*2147483647\r\n", "*2147483647"},
		{"error line of 1 MiB", "-ERR " + strings.Repeat("x", 1<<20) + "\r\n", "-ERR xxx"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// HELLO is refused as Redis 5 does, so the hostile bytes are the
			// reply to INFO.
			fake := testredis.StartFake(t, func(args []string) string {
				if strings.EqualFold(args[0], "HELLO") {
					return "-ERR unknown command 'HELLO'\r\n"
				}
				return c.reply
			})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			code, res, out := checkJSON(t, "--addr", fake.Addr, "--timeout", "5s")
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("check allocated %d MiB", grew>>20)
			}
			if code != check.CRITICAL {
				t.Errorf("exit %d, want %d (CRITICAL)\n%.2000s", code, check.CRITICAL, out)
			}
			fs := findingsOf(res)
			f, ok := fs[policy.IDRedisReplyInvalid]
			if !ok || len(fs) != 1 || f.Severity != policy.Critical {
				t.Fatalf("want only a critical %s, got:\n%.2000s", policy.IDRedisReplyInvalid, out)
			}
			if !strings.Contains(f.Cause, c.header) || !strings.Contains(f.Cause, "invalid reply from redis") || len(f.Cause) > 300 {
				t.Errorf("cause %q, want it to name %q in under 300 bytes", f.Cause, c.header)
			}

			code, text, _ := runCLI(t, "check", "--addr", fake.Addr, "--timeout", "5s")
			first, _, _ := strings.Cut(text, "\n")
			if code != check.CRITICAL || !strings.HasPrefix(first, "REDIS-GUARDIAN CRITICAL - ") || !strings.Contains(first, policy.IDRedisReplyInvalid) || len(text) > 4096 {
				t.Errorf("text output (exit %d, %d bytes):\n%.2000s\nwant CRITICAL naming %s", code, len(text), text, policy.IDRedisReplyInvalid)
			}
		})
	}
}
