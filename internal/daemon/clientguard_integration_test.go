package daemon_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// writeCounts are a writer's accepted writes and OOM rejections.
type writeCounts struct{ ok, oom atomic.Int64 }

// writeBig overwrites 64 keys with 4 KiB values in pipelines of 32, one every
// 2 ms, until ctx ends: the dataset stays small while a MONITOR is fed 4 KiB a
// command (up to 64 MB/s), and a replica keeps up with the stream on a loaded
// machine (unpaced, 360 MB/s could outgrow its output buffer limit).
func writeBig(ctx context.Context, c *redis.Client, n *writeCounts) {
	val := strings.Repeat("x", 4096)
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for j := range 32 {
					p.Set(ctx, "big:"+strconv.Itoa((i*32+j)%64), val, 0)
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
			time.Sleep(2 * time.Millisecond)
		}
	}()
}

// clientsOf returns the server's CLIENT LIST.
func clientsOf(t *testing.T, c *redis.Client) []monitor.Client {
	t.Helper()
	raw, err := c.Do(ctxT(t), "CLIENT", "LIST").Text()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	return monitor.ParseClientList(raw)
}

// TestClientGuardKillsRunawayMonitor is issue 24 item 2 on every build: a MONITOR
// that never reads, under write load, on a master with maxmemory 64mb
// (noeviction) and a replica attached. Redis alone rejects writes with OOM for as
// long as the MONITOR stays; with the guardian (client_guard on by default) the
// MONITOR is killed, writes are accepted again, and the replica's link is never
// touched.
func TestClientGuardKillsRunawayMonitor(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			master := testredis.Start(t, testredis.Options{TCP: true, Build: b, NoSave: true,
				Args: []string{"--maxmemory", "64mb", "--maxmemory-policy", "noeviction"}})
			host, port, err := net.SplitHostPort(master.Addr)
			if err != nil {
				t.Fatal(err)
			}
			replica := testredis.Start(t, testredis.Options{Build: b, NoSave: true, Args: []string{"--replicaof", host, port}})
			replica.WaitFor(t, "the replica's link to its master", waitLong, func(info map[string]string) bool {
				return info["master_link_status"] == "up"
			})
			mc := master.Client(t)
			var replicaID int64
			for _, cl := range clientsOf(t, mc) {
				if strings.Contains(cl.Flags, "S") {
					replicaID = cl.ID
				}
			}
			if replicaID == 0 {
				t.Fatalf("no replica (flag S) in the master's CLIENT LIST: %+v", clientsOf(t, mc))
			}
			syncFull := master.Info(t)["sync_full"]

			master.StuckMonitor(t)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var n writeCounts
			writeBig(ctx, master.Client(t), &n)

			// Before: Redis alone rejects writes for as long as the MONITOR stays.
			master.WaitFor(t, "writes rejected with OOM", 60*time.Second, func(i map[string]string) bool {
				return i["errorstat_OOM"] != ""
			})
			var monID int64
			for _, cl := range clientsOf(t, mc) {
				if cl.Monitor() {
					monID = cl.ID
				}
			}
			before := n.oom.Load()
			time.Sleep(3 * time.Second)
			if got := n.oom.Load() - before; got == 0 {
				t.Fatalf("no OOM rejections in 3 s with the MONITOR open and no guardian")
			} else {
				t.Logf("%s without the guardian: %d writes rejected with OOM in 3 s", b.Name, got)
			}

			g := startGuardian(t, master, guardianOpts{Interval: 200 * time.Millisecond, InfoRefresh: time.Second})
			e := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyClientGuard, "result": "killed"}, nil)
			t.Logf("%s: %s %v", b.Name, e.Message, e.Fields)
			if e.str("client_id") != strconv.FormatInt(monID, 10) || e.str("client_cmd") != "monitor" || !strings.Contains(e.str("client_flags"), "O") {
				t.Errorf("killed %v, want the MONITOR id=%d", e.Fields, monID)
			}
			for _, cl := range clientsOf(t, mc) {
				if cl.Monitor() {
					t.Errorf("a MONITOR is still connected after the kill: %+v", cl)
				}
			}

			// After: within a margin of the kill, writes are accepted again and no
			// more are rejected.
			time.Sleep(time.Second)
			oomAfter, okAfter := n.oom.Load(), n.ok.Load()
			g.observe(3 * time.Second)
			if got := n.oom.Load() - oomAfter; got != 0 {
				t.Errorf("%d writes rejected with OOM in the 3 s after the kill (and its 1 s margin)", got)
			}
			if got := n.ok.Load() - okAfter; got == 0 {
				t.Errorf("no write accepted in the 3 s after the kill")
			} else {
				t.Logf("%s after the kill: %d writes accepted, 0 rejected in 3 s", b.Name, got)
			}

			// The replica's link was never touched: the same connection, no new
			// full sync, the link up.
			var replicaNow int64
			for _, cl := range clientsOf(t, mc) {
				if strings.Contains(cl.Flags, "S") {
					replicaNow = cl.ID
				}
			}
			if replicaNow != replicaID {
				t.Errorf("the replica's connection is id %d, was %d", replicaNow, replicaID)
			}
			if got := master.Info(t)["sync_full"]; got != syncFull {
				t.Errorf("sync_full went from %s to %s: the replica resynced", syncFull, got)
			}
			if got := replica.Info(t)["master_link_status"]; got != "up" {
				t.Errorf("the replica's master_link_status is %s", got)
			}
			if kills := g.entries(fieldsEq{"remedy": policy.RemedyClientGuard, "result": "killed"}); len(kills) != 1 {
				t.Errorf("%d kills, want 1:\n%s", len(kills), fmt.Sprint(kills))
			}
		})
	}
}

// TestClientGuardBetweenFullReads: an instance with a maxmemory is read
// for memory at every tick, so a runaway MONITOR is killed between two full
// INFO reads. info_refresh is an hour here: after the guardian's first tick
// every read is a light one. On the code before, a light read asked for
// persistence only and CLIENT LIST ran at full reads only: the MONITOR was
// never killed (Redis rejected writes until the next full read, up to
// info_refresh).
func TestClientGuardBetweenFullReads(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{NoSave: true, Args: []string{"--maxmemory", "128mb", "--maxmemory-policy", "noeviction"}})
	srv.Fill(t, 56000, 1024) // about 57% of maxmemory: room for a MONITOR past 32 MiB
	g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, InfoRefresh: time.Hour})
	g.waitTicks(2) // the full read is behind: every tick from here on is light

	srv.StuckMonitor(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var n writeCounts
	writeBig(ctx, srv.Client(t), &n)
	// The fault builds as fast as the writer runs: slow on a loaded machine.
	kill := fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyClientGuard, "result": "killed"}
	deadline := time.Now().Add(90 * time.Second)
	for len(g.entries(kill)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no kill within 90 s (%d writes, %d rejected with OOM; Redis: used_memory %s, mem_clients_normal %s); entries:\n%s",
				n.ok.Load(), n.oom.Load(), srv.Info(t)["used_memory"], srv.Info(t)["mem_clients_normal"], g.dump())
		}
		time.Sleep(poll)
	}
	e := g.entries(kill)[0]
	if e.str("client_cmd") != "monitor" {
		t.Errorf("killed %v, want the MONITOR", e.Fields)
	}
	t.Logf("killed between full reads: %s %v; %d writes rejected with OOM before", e.Message, e.Fields, n.oom.Load())
}
