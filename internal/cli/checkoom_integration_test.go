package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestCheckOOMRejectionsArePresentTense is issue 24 item 4 on every build:
// errorstat_OOM counts from Redis's start, so a Redis that rejected two writes
// and then lost its maxmemory must not have check say "rejected 2 commands" as a
// problem now; while writes are being rejected, check says so.
func TestCheckOOMRejectionsArePresentTense(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{Build: b, NoSave: true, Args: []string{"--maxmemory-policy", "noeviction"}})
			c := srv.Client(t)
			ctx := context.Background()
			if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := c.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
					t.Fatalf("SET under maxmemory 1: %v, want an OOM rejection", err)
				}
			}
			if err := c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
				t.Fatal(err)
			}
			if got := srv.Info(t)["errorstat_OOM"]; got != "count=2" {
				t.Fatalf("errorstat_OOM %q, want count=2", got)
			}
			cfg := instanceConfig(t, srv.Socket, nil, hostIgnores(t))

			_, res, out := checkJSON(t, "-c", cfg)
			if f, ok := findingsOf(res)[policy.IDOOMRejections]; ok {
				t.Errorf("check reports past rejections as a problem now: %+v\n%s", f, out)
			}

			// Rejections while check runs are news.
			if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
				t.Fatal(err)
			}
			w := srv.StartWriter(t, 5*time.Millisecond)
			deadline := time.Now().Add(10 * time.Second)
			for w.Stats().Rejected == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no write rejected under maxmemory 1: %+v", w.Stats())
				}
				time.Sleep(10 * time.Millisecond)
			}
			_, res, out = checkJSON(t, "-c", cfg)
			st := w.Stop()
			f, ok := findingsOf(res)[policy.IDOOMRejections]
			if !ok {
				t.Fatalf("no oom_rejections while writes were rejected (%d so far):\n%s", st.Rejected, out)
			}
			if !strings.Contains(f.Summary, "commands with OOM in the last") || !strings.Contains(f.Cause, "since Redis started") {
				t.Errorf("oom_rejections does not say over what time: %+v", f)
			}
		})
	}
}
