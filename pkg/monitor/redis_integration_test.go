package monitor_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// TestRedisSourceLightTicks: against every server build, a tick between two full
// reads asks for INFO persistence only (the commandstats of INFO say so), its
// persistence is live and the other sections are the last full read's; a new
// connection (the old one killed, as a Redis restart does) makes the next tick
// full again.
func TestRedisSourceLightTicks(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{Build: b, NoSave: true})
			ctx := context.Background()
			src := lightSource(t, srv)
			c := srv.Client(t)

			t0 := time.Now()
			first := src.Read(ctx, t0)
			if first.Err != nil || !first.InfoFull || first.Info.RunID == "" || first.Info.UsedMemory == 0 {
				t.Fatalf("first read: full %v, err %v, run_id %q, used_memory %d; want a full read", first.InfoFull, first.Err, first.Info.RunID, first.Info.UsedMemory)
			}
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			// The slow log with a threshold of 0 keeps every command with its
			// arguments: what the server was asked.
			for _, cmd := range [][]any{{"CONFIG", "SET", "slowlog-log-slower-than", "0"}, {"SLOWLOG", "RESET"}} {
				if err := c.Do(ctx, cmd...).Err(); err != nil {
					t.Fatal(err)
				}
			}
			light := src.Read(ctx, t0.Add(time.Second))
			if light.Err != nil || light.InfoFull || !light.InfoTime.Equal(t0) {
				t.Fatalf("second read: full %v, err %v, info time %s; want a light read of the sections of %s", light.InfoFull, light.Err, light.InfoTime, t0)
			}
			if light.Info.RDBChangesSinceLastSave != first.Info.RDBChangesSinceLastSave+1 {
				t.Errorf("light read: rdb_changes_since_last_save %d, want %d (persistence is read live)", light.Info.RDBChangesSinceLastSave, first.Info.RDBChangesSinceLastSave+1)
			}
			if light.Info.TotalCommandsProcessed != first.Info.TotalCommandsProcessed || light.Info.RunID != first.Info.RunID {
				t.Errorf("light read: total_commands_processed %d, run_id %q; want the full read's %d, %q",
					light.Info.TotalCommandsProcessed, light.Info.RunID, first.Info.TotalCommandsProcessed, first.Info.RunID)
			}
			// What the server was asked: one INFO, for persistence only.
			logged, err := c.SlowLogGet(ctx, 20).Result()
			if err != nil {
				t.Fatal(err)
			}
			var infos [][]string
			for _, e := range logged {
				if len(e.Args) > 0 && strings.EqualFold(e.Args[0], "INFO") {
					infos = append(infos, e.Args)
				}
			}
			if len(infos) != 1 || strings.Join(infos[0], " ") != "INFO persistence" {
				t.Errorf("INFO calls of the light read: %q, want one: INFO persistence", infos)
			}

			// A new connection: the next tick is full.
			if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
				t.Fatal(err)
			}
			// The read that finds the connection killed either fails or, when
			// go-redis dials a new one first, is light (it was planned before
			// the dial): the read after it must be full.
			_ = src.Read(ctx, t0.Add(3*time.Second))
			again := src.Read(ctx, t0.Add(4*time.Second))
			if again.Err != nil || !again.InfoFull {
				t.Errorf("read after a new connection: full %v, err %v; want a full read", again.InfoFull, again.Err)
			}
		})
	}
}

// TestRedisSourceWatchesMemory: with a maxmemory, a light read asks for the
// memory section too, so used_memory is live at every tick; without one the
// light read leaves memory at the last full read's.
func TestRedisSourceWatchesMemory(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{NoSave: true})
	ctx := context.Background()
	src := lightSource(t, srv)
	c := srv.Client(t)
	t0 := time.Now()
	first := src.Read(ctx, t0)
	if first.Err != nil || monitor.MemoryWatched(first.Info) {
		t.Fatalf("first read: err %v, watched %v; want a read of a server without maxmemory", first.Err, monitor.MemoryWatched(first.Info))
	}
	big := strings.Repeat("x", 1<<20)
	for i := range 10 {
		if err := c.Set(ctx, "big"+strconv.Itoa(i), big, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	light := src.Read(ctx, t0.Add(time.Second))
	if light.InfoFull || light.Info.UsedMemory != first.Info.UsedMemory {
		t.Fatalf("light read without maxmemory: full %v, used_memory %d; want the full read's %d", light.InfoFull, light.Info.UsedMemory, first.Info.UsedMemory)
	}
	if !light.MemoryTime.Equal(t0) {
		t.Errorf("light read without maxmemory: MemoryTime %v, want the full read's %v", light.MemoryTime, t0)
	}
	if err := c.ConfigSet(ctx, "maxmemory", "64mb").Err(); err != nil {
		t.Fatal(err)
	}
	src.MarkInfoStale()
	full := src.Read(ctx, t0.Add(2*time.Second))
	if !full.InfoFull || !monitor.MemoryWatched(full.Info) {
		t.Fatalf("full read: full %v, maxmemory %d; want it watched", full.InfoFull, full.Info.MaxMemory)
	}
	if err := c.Del(ctx, "big0", "big1", "big2").Err(); err != nil {
		t.Fatal(err)
	}
	watched := src.Read(ctx, t0.Add(3*time.Second))
	if watched.InfoFull || watched.Info.UsedMemory >= full.Info.UsedMemory-2<<20 {
		t.Errorf("light read with maxmemory: full %v, used_memory %d after deleting 3 MiB of %d; want it live", watched.InfoFull, watched.Info.UsedMemory, full.Info.UsedMemory)
	}
	if want := t0.Add(3 * time.Second); !watched.MemoryTime.Equal(want) || !watched.InfoTime.Equal(t0.Add(2*time.Second)) {
		t.Errorf("light read with maxmemory: MemoryTime %v, InfoTime %v; want %v and the full read's", watched.MemoryTime, watched.InfoTime, want)
	}
}

// lightSource reads srv with full reads only when asked (MarkInfoStale): every
// other read is a light one.
func lightSource(t *testing.T, srv *testredis.Server) *monitor.RedisSource {
	t.Helper()
	opts := monitor.RedisOptions{Addr: srv.Socket, DialTimeout: time.Second, CommandTimeout: time.Second,
		ConfigRefresh: time.Hour, InfoRefresh: time.Hour}
	client, err := monitor.NewRedisClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return monitor.NewRedisSource(client, opts)
}
