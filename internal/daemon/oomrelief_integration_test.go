package daemon_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

const (
	reliefOrig = 20 << 20 // maxmemory the server starts with
	reliefCap  = 25 << 20 // 25% above it: oom_relief's default max_raise
)

// growCounts are a growing writer's accepted writes and OOM rejections.
type growCounts struct{ ok, oom atomic.Int64 }

// writeGrowing adds keys of 1000 bytes, 50 per pipeline every 50 ms (about
// 1 MB/s), until target keys are written (0: until ctx ends). A rejected key is
// written again, so the dataset reaches its size whatever was rejected.
func writeGrowing(ctx context.Context, c *redis.Client, target int, n *growCounts) <-chan struct{} {
	done := make(chan struct{})
	val := strings.Repeat("v", 1000)
	go func() {
		defer close(done)
		next := 0
		for ctx.Err() == nil && (target == 0 || next < target) {
			first := next
			cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := range 50 {
					p.Set(ctx, "grow:"+strconv.Itoa(first+i), val, 0)
				}
				return nil
			})
			for _, cmd := range cmds {
				switch err := cmd.Err(); {
				case err == nil:
					n.ok.Add(1)
				case strings.HasPrefix(err.Error(), "OOM"):
					n.oom.Add(1)
				}
			}
			// Advance past the keys written in order; a rejected one is retried.
			for _, cmd := range cmds {
				if cmd.Err() != nil {
					break
				}
				next++
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return done
}

// reliefRemedies turns oom_relief on with a short dwell.
func reliefRemedies(rs policy.Remedies) {
	c := policy.ConfigOf[*policy.OOMReliefConfig](rs)
	c.Enabled, c.Dwell, c.Horizon = true, 2*time.Second, 10*time.Second
}

// TestOOMReliefKeepsWritesFlowing is issue 24 item 3 on every build: maxmemory
// 20mb, noeviction, a writer that grows the dataset to about 22 MB. Redis alone
// rejects every write past 20mb; with oom_relief on, maxmemory is raised through
// the ledger in steps ahead of the growth, within max_raise (25mb), and writes
// keep flowing. Once the dataset is deleted, maxmemory is given back after the
// dwell and the ledger is empty.
func TestOOMReliefKeepsWritesFlowing(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{Build: b, NoSave: true,
				Args: []string{"--maxmemory", strconv.Itoa(reliefOrig), "--maxmemory-policy", "noeviction"}})
			c := srv.Client(t)
			// info_refresh is the default (10 s): with a maxmemory a light read
			// asks for INFO memory too, so the steps follow at every tick.
			g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, Remedies: reliefRemedies})
			g.waitTicks(3)

			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var n growCounts
			const keys = 19000 // about 22 MB of used_memory
			done := writeGrowing(ctx, srv.Client(t), keys, &n)
			select {
			case <-done:
			case <-time.After(90 * time.Second):
				t.Fatalf("the writer wrote %d keys in 90 s (%d rejected with OOM); want %d", n.ok.Load(), n.oom.Load(), keys)
			}
			info := srv.Info(t)
			used, _ := strconv.ParseInt(info["used_memory"], 10, 64)
			t.Logf("%s: %d writes accepted, %d rejected with OOM; used_memory %s, maxmemory %s", b.Name, n.ok.Load(), n.oom.Load(),
				policy.HumanBytes(used), configGet(t, c, "maxmemory"))
			if used <= reliefOrig {
				t.Fatalf("used_memory %d is not above the original maxmemory %d: the test did not grow past it", used, reliefOrig)
			}
			// A step is judged on the reading after it: a burst faster than a step
			// per reading could meet a few rejections, never a stream of them.
			if got := n.oom.Load(); got > 50 {
				t.Errorf("%d writes rejected with OOM while the host had room", got)
			}

			held, ok := g.Exec.Held()[policy.SettingMaxmemory]
			if !ok || held.Remedy != policy.RemedyOOMRelief {
				t.Fatalf("the ledger holds no maxmemory of oom_relief: %+v\n%s", g.Exec.Held(), g.dump())
			}
			v, err := strconv.ParseInt(held.Value, 10, 64)
			if err != nil || v <= reliefOrig || v > reliefCap || held.Original != strconv.Itoa(reliefOrig) {
				t.Errorf("held %+v: want a value in (%d, %d] and the original %d", held, reliefOrig, reliefCap, reliefOrig)
			}
			if live := configGet(t, c, "maxmemory"); live != held.Value {
				t.Errorf("live maxmemory %s, the ledger says %s", live, held.Value)
			}
			steps := g.entries(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyOOMRelief})
			if len(steps) == 0 {
				t.Fatalf("no remedy_applied event of oom_relief")
			}
			g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDOOMReliefRaised}, nil)

			// The dataset shrinks: maxmemory is given back after the dwell.
			if err := c.FlushAll(ctxT(t)).Err(); err != nil {
				t.Fatalf("FLUSHALL: %v", err)
			}
			e := g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "remedy": policy.RemedyOOMRelief}, nil)
			t.Logf("%s: %d steps, then %s", b.Name, len(steps), e.Message)
			if got := configGet(t, c, "maxmemory"); got != strconv.Itoa(reliefOrig) {
				t.Errorf("maxmemory %s after the give-back, want %d", got, reliefOrig)
			}
			if h := g.Exec.Held(); len(h) != 0 {
				t.Errorf("the ledger still holds %+v", h)
			}
			if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
				t.Errorf("the ledger file still holds %+v", ch)
			}
		})
	}
}

// TestOOMReliefStopsAtMaxRaise: a dataset that keeps growing is given at most
// max_raise (25% of 20mb): maxmemory stops at 25mb, writes are rejected from
// there, the critical oom_relief_no_room says why, and the warning
// oom_relief_raised stands. At the guardian's stop the raise is kept (giving it
// back would reject every write at once): the ledger still holds it.
func TestOOMReliefStopsAtMaxRaise(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{Build: b, NoSave: true,
				Args: []string{"--maxmemory", strconv.Itoa(reliefOrig), "--maxmemory-policy", "noeviction"}})
			c := srv.Client(t)
			srv.Fill(t, 12000, 1000) // about 13 MB: the cap is reached within seconds of growth
			g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, InfoRefresh: 400 * time.Millisecond, Remedies: reliefRemedies})
			g.waitTicks(3)

			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var n growCounts
			writeGrowing(ctx, srv.Client(t), 0, &n)
			crit := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDOOMReliefNoRoom, "severity": string(policy.Critical)}, nil)
			t.Logf("%s: %s (%s)", b.Name, crit.Message, crit.str("cause"))
			if !strings.Contains(crit.str("cause"), "max_raise") {
				t.Errorf("cause %q does not name max_raise", crit.str("cause"))
			}
			if got := configGet(t, c, "maxmemory"); got != strconv.Itoa(reliefCap) {
				t.Errorf("maxmemory %s at the cap, want %d", got, reliefCap)
			}
			warn := g.entries(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDOOMReliefRaised, "severity": string(policy.Warning)})
			if len(warn) == 0 {
				t.Errorf("no %s warning while maxmemory is held raised", policy.IDOOMReliefRaised)
			}
			// Rejected from the cap on: the raise stopped there.
			before := n.oom.Load()
			waitFor(t, "writes rejected at the cap", func() bool { return n.oom.Load() > before })
			cancel()

			if err := g.Stop(); err != nil {
				t.Fatal(err)
			}
			if got := configGet(t, c, "maxmemory"); got != strconv.Itoa(reliefCap) {
				t.Errorf("maxmemory %s after the stop with used_memory above the original, want it kept at %d", got, reliefCap)
			}
			ch := ledgerChanges(t, g.StateDir)
			if len(ch) != 1 || ch[0].Setting != policy.SettingMaxmemory || ch[0].Original != strconv.Itoa(reliefOrig) {
				t.Errorf("ledger after the stop %+v, want the raise of maxmemory from %d kept", ch, reliefOrig)
			}
		})
	}
}

// TestOOMReliefStaysWithinCgroupRoom: the room a memory cgroup leaves bounds the
// raise before max_raise does. Redis runs in a group whose limit is what it holds
// beyond used_memory plus 24 MiB; a dataset that keeps growing past maxmemory
// 20mb is given a raise that stops short of 25mb, with oom_relief_no_room naming
// the cgroup, and the kernel never OOM-kills Redis.
func TestOOMReliefStaysWithinCgroupRoom(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			cg := testredis.MemoryCgroup(t, 0)
			srv := testredis.Start(t, testredis.Options{Build: b, NoSave: true, MemCgroup: cg,
				Args: []string{"--maxmemory", strconv.Itoa(reliefOrig), "--maxmemory-policy", "noeviction"}})
			c := srv.Client(t)
			srv.Fill(t, 12000, 1000)
			used, _ := strconv.ParseInt(srv.Info(t)["used_memory"], 10, 64)
			limit := cg.WorkingSet(t) - used + 24<<20
			cg.SetLimit(t, limit)
			t.Logf("%s: cgroup limit %s (used_memory %s)", b.Name, policy.HumanBytes(limit), policy.HumanBytes(used))

			g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, InfoRefresh: 400 * time.Millisecond, Remedies: reliefRemedies})
			g.waitTicks(3)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var n growCounts
			writeGrowing(ctx, srv.Client(t), 0, &n)
			crit := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDOOMReliefNoRoom, "severity": string(policy.Critical)}, nil)
			cancel()
			t.Logf("%s: %s", b.Name, crit.str("cause"))
			if !strings.Contains(crit.str("cause"), "cgroup") {
				t.Errorf("cause %q does not name the cgroup's room", crit.str("cause"))
			}
			got, _ := strconv.ParseInt(configGet(t, c, "maxmemory"), 10, 64)
			if got <= reliefOrig || got >= reliefCap {
				t.Errorf("maxmemory %d: want a raise stopped by the cgroup, in (%d, %d)", got, reliefOrig, reliefCap)
			}
			if k := cg.OOMKills(t); k != 0 {
				t.Errorf("the kernel OOM-killed %d processes in the group", k)
			}
			if err := c.Ping(ctxT(t)).Err(); err != nil {
				t.Errorf("Redis does not answer after the raise: %v", err)
			}
			t.Logf("%s: maxmemory raised to %s under a cgroup limit of %s; working set %s", b.Name,
				policy.HumanBytes(got), policy.HumanBytes(limit), policy.HumanBytes(cg.WorkingSet(t)))
		})
	}
}
