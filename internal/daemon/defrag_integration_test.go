package daemon_test

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestDefragRefusalLearnt is issue 24 item 4 on every build: the fragmentation
// pattern (DEBUG POPULATE 500000, 90% deleted), an operator's
// active-defrag-cycle-max 75, and the defrag remedy turned on. Every build here
// (Debian's redis 7.0.15 and 8.0.2, valkey 8.0.1 and 8.1.1) refuses
// activedefrag: the guardian bounds active-defrag-cycle-max to 25 first, asks
// for activedefrag once, learns the refusal from the answer, gives the bound
// back, and never asks again; nothing is left changed (the ledger is empty,
// active-defrag-cycle-max is 75 again) and fragmentation_high gives the
// failover-and-restart fix with the bytes it would return. No build here
// accepts activedefrag, so the working path (hold, progress, give back) is
// proven by the policy's units and the executor-level units in pkg/remediate.
func TestDefragRefusalLearnt(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{Build: b, NoSave: true,
				Args: []string{"--enable-debug-command", "yes", "--active-defrag-cycle-max", "75"}})
			c := srv.Client(t)
			srv.Fragment(t)
			in := srv.Info(t)
			t.Logf("%s: used_memory %s, RSS %s, allocator_active %s, allocator_allocated %s, allocator_frag_bytes %s",
				b.Name, in["used_memory"], in["used_memory_rss"], in["allocator_active"], in["allocator_allocated"], in["allocator_frag_bytes"])

			var mu sync.Mutex
			var last []policy.Finding
			g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, ConfigRefresh: time.Second, InfoRefresh: time.Second,
				Remedies: func(rs policy.Remedies) { policy.ConfigOf[*policy.DefragConfig](rs).Enabled = true },
				Report: func(r daemon.TickReport) {
					mu.Lock()
					last = r.Findings
					mu.Unlock()
				}})
			bound := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyDefrag}, nil)
			if bound.str("setting") != policy.SettingDefragCycleMax || bound.str("new_value") != "25" || bound.str("old_value") != "75" {
				t.Errorf("first step %s, want the bound: active-defrag-cycle-max 25 (was 75)", bound)
			}
			refused := g.waitEntry(fieldsEq{"event": string(events.RemedyFailed), "remedy": policy.RemedyDefrag}, nil)
			if refused.str("setting") != policy.SettingActiveDefrag || !policy.DefragRefused(refused.str("error")) {
				t.Errorf("the attempt %s, want activedefrag refused by the build", refused)
			}
			g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "remedy": policy.RemedyDefrag, "setting": policy.SettingDefragCycleMax}, nil)
			waitConfig(t, c, policy.SettingDefragCycleMax, "75")
			// Ticks after the shared backoff of a failure (10 s at first) has
			// run out, when only the lesson keeps the remedy from asking again:
			// still one attempt, nothing held.
			time.Sleep(time.Until(refused.Time.Add(11 * time.Second)))
			g.waitTicks(5)
			if n := len(g.entries(fieldsEq{"event": string(events.RemedyFailed), "remedy": policy.RemedyDefrag})); n != 1 {
				t.Errorf("%d failed attempts, want the one that taught the guardian", n)
			}
			if n := len(g.entries(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyDefrag})); n != 1 {
				t.Errorf("%d changes applied, want the bound once", n)
			}
			if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
				t.Errorf("the ledger holds %+v", ch)
			}
			for name, want := range map[string]string{policy.SettingActiveDefrag: "no", policy.SettingDefragCycleMax: "75"} {
				if got := configGet(t, c, name); got != want {
					t.Errorf("%s is %q, want %q", name, got, want)
				}
			}

			mu.Lock()
			fs := last
			mu.Unlock()
			var f *policy.Finding
			for i := range fs {
				if fs[i].ID == policy.IDFragmentationHigh {
					f = &fs[i]
				}
			}
			if f == nil {
				t.Fatalf("no fragmentation_high; findings %+v", fs)
			}
			t.Logf("%s: fix: %s", b.Name, f.Fix)
			for _, want := range []string{"this build refuses activedefrag", "fail over to a replica and restart this server, which would return about"} {
				if !strings.Contains(f.Fix, want) {
					t.Errorf("fix lacks %q: %s", want, f.Fix)
				}
			}
			// The bytes are allocator_active - allocator_allocated, above the
			// 64 MiB floor (about 200 MiB measured on every build).
			m := regexp.MustCompile(`return about ([0-9.]+) MiB`).FindStringSubmatch(f.Fix)
			if m == nil {
				t.Fatalf("fix gives no MiB to return: %s", f.Fix)
			}
			if mib, _ := strconv.ParseFloat(m[1], 64); mib < 64 {
				t.Errorf("fix returns %.1f MiB, want at least the 64 MiB floor", mib)
			}
			if !strings.Contains(f.Cause, "Active defragmentation cannot be enabled") {
				t.Errorf("cause does not quote the server's answer: %s", f.Cause)
			}

			if err := g.Stop(); err != nil {
				t.Fatalf("guardian Run: %v", err)
			}
			if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
				t.Errorf("after the guardian stopped the ledger holds %+v", ch)
			}
		})
	}
}
