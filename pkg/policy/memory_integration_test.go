package policy_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis/go-redis/v9"
)

// collector is the guardian's reading of srv as the daemon has it: every tick a
// full INFO read (so CLIENT LIST may run on any), host checks off (this test is
// about Redis's own numbers).
func collector(t *testing.T, srv *testredis.Server) *monitor.Collector {
	t.Helper()
	opts := monitor.RedisOptions{Addr: srv.Socket, DialTimeout: 2 * time.Second, CommandTimeout: 5 * time.Second,
		ConfigRefresh: time.Hour, InfoRefresh: 0, ConfigParams: policy.ConfigParams()}
	client, err := monitor.NewRedisClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return monitor.NewCollector(monitor.CollectorOptions{Name: "main", Addr: srv.Socket,
		Redis: monitor.NewRedisSource(client, opts), HostChecks: monitor.HostChecksOff})
}

// bigWriter overwrites 64 keys with 4 KiB values in pipelines of 32 until ctx
// ends: the dataset stays small while a MONITOR is fed 4 KiB a command. It counts
// the OOM rejections.
func bigWriter(ctx context.Context, srv *testredis.Server, t *testing.T, oom *atomic.Int64) {
	c := srv.Client(t)
	val := strings.Repeat("x", 4096)
	go func() {
		for n := 0; ctx.Err() == nil; n++ {
			cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := range 32 {
					p.Set(ctx, "big:"+strconv.Itoa((n*32+i)%64), val, 0)
				}
				return nil
			})
			for _, cmd := range cmds {
				if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "OOM") {
					oom.Add(1)
				}
			}
		}
	}()
}

// monitorID returns the id and address of the MONITOR in CLIENT LIST.
func monitorID(t *testing.T, c *redis.Client) (int64, string) {
	t.Helper()
	raw, err := c.Do(context.Background(), "CLIENT", "LIST").Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range monitor.ParseClientList(raw) {
		if cl.Monitor() {
			return cl.ID, cl.Addr
		}
	}
	t.Fatalf("no MONITOR in CLIENT LIST:\n%s", raw)
	return 0, ""
}

// clientListCalls is how many times CLIENT LIST ran on the server.
func clientListCalls(t *testing.T, c *redis.Client) int {
	t.Helper()
	raw, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(raw, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_client|list:calls="); ok {
			n, _ := strconv.Atoi(strings.SplitN(v, ",", 2)[0])
			return n
		}
	}
	return 0
}

func findID(fs []policy.Finding, id string) (policy.Finding, bool) {
	for _, f := range fs {
		if f.ID == id {
			return f, true
		}
	}
	return policy.Finding{}, false
}

// TestRunawayMonitorIsTheCause is issue 24 item 1 on every build: a MONITOR that
// never reads, under write load, with maxmemory 64mb and noeviction, fills memory
// until writes are rejected with OOM. The guardian's findings must name client
// buffers and the MONITOR (its id, address, cmd=monitor) and advise CLIENT KILL and
// client-output-buffer-limit, not "raise maxmemory or reduce the dataset"; and
// CLIENT LIST runs once for two readings a second apart.
func TestRunawayMonitorIsTheCause(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{Build: b, NoSave: true,
				Args: []string{"--maxmemory", "64mb", "--maxmemory-policy", "noeviction"}})
			c := srv.Client(t)
			srv.StuckMonitor(t)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var oom atomic.Int64
			bigWriter(ctx, srv, t, &oom)
			srv.WaitFor(t, "writes rejected with OOM", 60*time.Second, func(i map[string]string) bool {
				return i["errorstat_OOM"] != ""
			})
			monID, monAddr := monitorID(t, c)
			listedBefore := clientListCalls(t, c)

			col := collector(t, srv)
			first := col.Snapshot(ctx, time.Now())
			// New rejections between the two readings: the writer keeps writing.
			deadline := time.Now().Add(30 * time.Second)
			for n := oom.Load(); oom.Load() < n+10; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no new OOM rejections in 30 s (%d so far)", oom.Load())
				}
			}
			time.Sleep(time.Second)
			second := col.Snapshot(ctx, time.Now())
			if first.Redis.Err != nil || second.Redis.Err != nil {
				t.Fatalf("readings failed: %v, %v", first.Redis.Err, second.Redis.Err)
			}
			in := second.Redis.Info
			t.Logf("%s: used_memory %d, mem_clients_normal %d, dataset %d, errorstat_OOM %d, clients %+v",
				b.Name, in.UsedMemory, in.MemClientsNormal, in.UsedMemoryDataset, in.ErrorstatOOM, second.Redis.Clients)

			// The reading: one CLIENT LIST for both (the second reused the first's),
			// the MONITOR first, only clients with something in their buffers.
			if got := clientListCalls(t, c) - listedBefore; got != 1 {
				t.Errorf("CLIENT LIST ran %d times for two readings a second apart, want 1", got)
			}
			if second.Redis.ClientsErr != nil || len(second.Redis.Clients) == 0 || !second.Redis.ClientsTime.Equal(first.Redis.ClientsTime) {
				t.Fatalf("clients: %+v at %s (first at %s), err %v", second.Redis.Clients, second.Redis.ClientsTime, first.Redis.ClientsTime, second.Redis.ClientsErr)
			}
			if top := second.Redis.Clients[0]; top.ID != monID || top.Cmd != "monitor" || top.Omem < 32<<20 {
				t.Errorf("the biggest client is %+v, want the MONITOR id=%d with most of 64 MiB", top, monID)
			}
			for _, cl := range second.Redis.Clients {
				if cl.Omem <= 0 || cl.Cmd == "client|list" {
					t.Errorf("listed %+v: an empty buffer or the listing connection", cl)
				}
			}

			fs := policy.Diagnose(second, policy.History{Prev: &first}, policy.DefaultThresholds(), nil)
			want := []string{"it holds client buffers (mem_clients_normal)", fmt.Sprintf("id=%d addr=%s", monID, monAddr), "cmd=monitor flags=O"}
			for _, id := range []string{policy.IDMaxmemoryNearLimit, policy.IDOOMRejections} {
				f, ok := findID(fs, id)
				if !ok {
					t.Errorf("no %s finding: %+v", id, fs)
					continue
				}
				t.Logf("%s: %s\n  cause: %s\n  fix: %s", id, f.Summary, f.Cause, f.Fix)
				for _, s := range want {
					if !strings.Contains(f.Cause, s) {
						t.Errorf("%s cause lacks %q: %s", id, s, f.Cause)
					}
				}
				for _, s := range []string{fmt.Sprintf("CLIENT KILL ID %d", monID), "client-output-buffer-limit \"normal"} {
					if !strings.Contains(f.Fix, s) {
						t.Errorf("%s fix lacks %q: %s", id, s, f.Fix)
					}
				}
				for _, s := range []string{"raise maxmemory if", "raise maxmemory,", "or reduce the dataset"} {
					if strings.Contains(f.Fix, s) {
						t.Errorf("%s fix says %q, for a client that does not read: %s", id, s, f.Fix)
					}
				}
			}
		})
	}
}

// TestFragmentationOnAllocatorNumbersReal is issue 24 item 3 on every build: DEBUG
// POPULATE 500000 keys of 500 bytes, delete 90% of them. fragmentation_high judges
// allocator_frag_* and its fix is one this build can carry out: the test asks the
// server whether it accepts activedefrag and expects the advice for its answer.
func TestFragmentationOnAllocatorNumbersReal(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{Build: b, NoSave: true, Args: []string{"--enable-debug-command", "yes"}})
			c := srv.Client(t)
			ctx := context.Background()
			srv.Fragment(t)
			col := collector(t, srv)
			s := col.Snapshot(ctx, time.Now())
			in := s.Redis.Info
			t.Logf("%s: keys %d, used_memory %d, RSS %d, allocator_frag_bytes %d (ratio %.2f), allocator_rss_bytes %d, mem_fragmentation_ratio %.2f",
				b.Name, in.Keys, in.UsedMemory, in.UsedMemoryRSS, in.AllocatorFragBytes, in.AllocatorFragRatio, in.AllocatorRSSBytes, in.MemFragmentationRatio)
			if in.Keys != testredis.FragmentKeys/10 {
				t.Fatalf("%d keys left, want 50000", in.Keys)
			}
			err := c.ConfigSet(ctx, "activedefrag", "yes").Err()
			if err != nil && !strings.Contains(err.Error(), "Active defragmentation cannot be enabled") {
				t.Fatalf("CONFIG SET activedefrag yes: %v", err)
			}
			t.Logf("%s: CONFIG SET activedefrag yes: %v", b.Name, err)
			col.MarkConfigStale()
			s = col.Snapshot(ctx, time.Now())
			f, ok := findID(policy.Diagnose(s, policy.History{}, policy.DefaultThresholds(), nil), policy.IDFragmentationHigh)
			if !ok {
				t.Fatalf("no fragmentation_high for allocator_frag_bytes %d", s.Redis.Info.AllocatorFragBytes)
			}
			for _, want := range []string{"allocator_active", "for allocator_allocated", "in pages the allocator holds partly empty"} {
				if !strings.Contains(f.Cause, want) {
					t.Errorf("cause lacks %q: %s", want, f.Cause)
				}
			}
			// The advice follows the server's answer: refused, a failover and
			// restart (with activedefrag only as what works on builds with Redis's
			// bundled jemalloc, or not at all where INFO shows the build cannot);
			// accepted, it is on.
			wantFix := []string{"fail over to a replica and restart this one, which would return about"}
			if err == nil {
				wantFix = []string{"activedefrag is on"}
			}
			for _, want := range wantFix {
				if !strings.Contains(f.Fix, want) {
					t.Errorf("fix lacks %q: %s", want, f.Fix)
				}
			}
			if err != nil && strings.Contains(f.Fix, "activedefrag yes") && !strings.Contains(f.Fix, "activedefrag yes) works only on builds with Redis's bundled jemalloc") {
				t.Errorf("fix offers activedefrag to a build that refuses it: %s", f.Fix)
			}
			if strings.Contains(f.Fix, "(jemalloc builds)") {
				t.Errorf("fix offers activedefrag as if every jemalloc build had it: %s", f.Fix)
			}
		})
	}
}
