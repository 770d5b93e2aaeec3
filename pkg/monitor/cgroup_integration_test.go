package monitor_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestHostSourceMemoryCgroup: a real redis-server in a memory cgroup of its own
// (v1 on these machines, as on RHEL 8, where the guardian once saw nothing): the
// host source reads the group's limit, usage and working set; then the group's
// OOM killer takes a save child whose copy-on-write outgrew a lowered limit, the
// reading shows oom_kill risen, and the policy reports cgroup_oom_kill, with
// cgroup_memory_tight for the limit that caused it.
func TestHostSourceMemoryCgroup(t *testing.T) {
	const (
		limit     = 512 << 20
		keys      = 40000
		valueSize = 1000 // ~40 MiB of incompressible values
	)
	cg := testredis.MemoryCgroup(t, limit)
	srv := testredis.Start(t, testredis.Options{NoSave: true, MemCgroup: cg})
	ctx := context.Background()
	c := srv.Client(t)
	ro := monitor.RedisOptions{Addr: srv.Socket, DialTimeout: time.Second, CommandTimeout: 5 * time.Second, ConfigRefresh: time.Minute}
	client, err := monitor.NewRedisClient(ro)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	col := monitor.NewCollector(monitor.CollectorOptions{Name: "cgroup", Addr: srv.Socket, Redis: monitor.NewRedisSource(client, ro),
		Host: monitor.NewHostSource(monitor.HostOptions{CacheTTL: -1}), HostChecks: monitor.HostChecksOn})
	snapshot := func() monitor.Snapshot {
		t.Helper()
		s := col.Snapshot(ctx, time.Now())
		if s.Redis.Err != nil || !s.Host.Available {
			t.Fatalf("snapshot: redis %v, host available %v (%s)", s.Redis.Err, s.Host.Available, s.Host.Reason)
		}
		for _, e := range s.Host.Errors {
			if strings.HasPrefix(e, "cgroup:") {
				t.Fatalf("host reading error: %s", e)
			}
		}
		return s
	}

	srv.Fill(t, keys, valueSize)
	// A SAVE of incompressible values leaves the RDB in the group's page cache:
	// usage, but no working set.
	for _, kv := range [][2]string{{"rdbcompression", "no"}} {
		if err := c.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatalf("CONFIG SET %s %s: %v", kv[0], kv[1], err)
		}
	}
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	before := snapshot()
	got := before.Host.Cgroup
	t.Logf("cgroup reading: %+v; redis used_memory %d, rss %d", got, before.Redis.Info.UsedMemory, before.Redis.Info.UsedMemoryRSS)
	if !got.Known || got.Version != cg.Version || got.Path != cg.Path || got.MemoryMax != limit || got.LimitPath != cg.Path {
		t.Fatalf("cgroup reading %+v; want known, v%d, %s, limit %d set there", got, cg.Version, cg.Path, limit)
	}
	if got.WorkingSet < 32<<20 || got.WorkingSet > got.MemoryCurrent || got.MemoryCurrent > limit {
		t.Errorf("working set %d, usage %d: want at least the 32 MiB of values in the working set, within the usage and the limit", got.WorkingSet, got.MemoryCurrent)
	}
	if cache := got.MemoryCurrent - got.WorkingSet; cache < 16<<20 {
		t.Errorf("usage %d - working set %d = %d: want the RDB just saved (~40 MiB) as inactive page cache outside the working set", got.MemoryCurrent, got.WorkingSet, cache)
	}
	if ids := cgFindingIDs(policy.Diagnose(before, policy.History{}, policy.DefaultThresholds(), nil)); ids[policy.IDCgroupMemoryTight] || ids[policy.IDCgroupOOMKill] {
		t.Errorf("findings %v under a roomy limit, want no cgroup finding", ids)
	}

	// Leave less room than a save's copy-on-write needs (the kernel reclaims the
	// page cache to get there), keep the save child alive, and rewrite every key
	// under it. oom-score-adj makes the child, not Redis, the OOM killer's choice.
	for _, kv := range [][2]string{{"oom-score-adj", "yes"}, {"oom-score-adj-values", "0 200 800"}, {"rdb-key-save-delay", "1000"}} {
		if err := c.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatalf("CONFIG SET %s %s: %v", kv[0], kv[1], err)
		}
	}
	tight := int64(got.WorkingSet) + 24<<20
	cg.SetLimit(t, tight)
	if err := c.BgSave(ctx).Err(); err != nil {
		t.Fatalf("BGSAVE: %v", err)
	}
	child := srv.ChildPID(t, 10*time.Second)
	if err := srv.Overwrite(c, keys, valueSize); err != nil {
		t.Log(err) // a connection the OOM kill's wait timed out; the log is the judge
	}
	cgWaitLog(t, srv, "Background saving terminated by signal 9", 30*time.Second)
	if _, err := os.Stat("/proc/" + strconv.Itoa(child)); err == nil {
		t.Errorf("save child %d still alive", child)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis itself did not survive the OOM kill: %v", err)
	}

	after := snapshot()
	now := after.Host.Cgroup
	t.Logf("after the OOM kill: %+v\n%s", now, cg.ReadFile(t, oomFile(cg)))
	if now.OOMKill <= got.OOMKill || now.Failcnt == 0 || now.MemoryMax != uint64(tight) {
		t.Fatalf("oom_kill %d -> %d, limit hits %d, limit %d: want oom_kill risen, the limit hit, the limit %d", got.OOMKill, now.OOMKill, now.Failcnt, now.MemoryMax, tight)
	}
	fs := policy.Diagnose(after, policy.History{Prev: &before}, policy.DefaultThresholds(), nil)
	var oom *policy.Finding
	for i := range fs {
		if fs[i].ID == policy.IDCgroupOOMKill {
			oom = &fs[i]
		}
	}
	if oom == nil || oom.Severity != policy.Critical {
		t.Fatalf("findings %+v: want a critical cgroup_oom_kill", fs)
	}
	for _, want := range []string{cg.Path, fmt.Sprintf("rose by %d", now.OOMKill-got.OOMKill)} {
		if !strings.Contains(oom.Cause, want) {
			t.Errorf("cgroup_oom_kill cause %q, want it to contain %q", oom.Cause, want)
		}
	}
	if !cgFindingIDs(fs)[policy.IDCgroupMemoryTight] {
		t.Errorf("findings %+v: want cgroup_memory_tight for the limit that left no room", fs)
	}
	// The next reading, with no new kill, is no news.
	if ids := cgFindingIDs(policy.Diagnose(snapshot(), policy.History{Prev: &after}, policy.DefaultThresholds(), nil)); ids[policy.IDCgroupOOMKill] {
		t.Errorf("cgroup_oom_kill again without a new kill")
	}
}

func oomFile(cg *testredis.MemCgroup) string {
	if cg.Version == 1 {
		return "memory.oom_control"
	}
	return "memory.events"
}

func cgFindingIDs(fs []policy.Finding) map[string]bool {
	m := map[string]bool{}
	for _, f := range fs {
		m[f.ID] = true
	}
	return m
}

// cgWaitLog waits until the server's log holds substr.
func cgWaitLog(t *testing.T, srv *testredis.Server, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(srv.LogFile)
		if strings.Contains(string(b), substr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the Redis log after %s; tail:\n%s", substr, timeout, srv.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
