package daemon_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// The early save test's traffic: "save 20 1" comes due 21 s after the last
// save; the writers are quiet from 15 s to 20 s after it and overwrite keys
// flat out the rest of the time, so Redis's own save (at 21 s) forks in a
// burst, and an early save (fork_budget's lead: the last 5 s) can fork in the
// lull.
const (
	earlySavePoint = "20 1"
	earlyKeys      = 150000
	quietFrom      = 15 * time.Second
	quietTo        = 20 * time.Second
)

// savedAt is one completed save as INFO tells it afterwards.
type savedAt struct {
	startedAfter time.Duration // since the save before it
	cow          int64         // rdb_last_cow_size
}

// burstyWriter overwrites the server's fill keys from two clients except while
// the time since its last save is in [quietFrom, quietTo). It stops with stop.
func burstyWriter(t *testing.T, srv *testredis.Server) (stop func() int64) {
	t.Helper()
	var lastSave atomic.Int64
	var writes atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // reads lastsave for the writers
		defer wg.Done()
		c := srv.Client(t)
		for ctx.Err() == nil {
			if v, err := strconv.ParseInt(persistence(ctx, c)["rdb_last_save_time"], 10, 64); err == nil {
				lastSave.Store(v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for range 2 {
		go func() {
			defer wg.Done()
			c := srv.Client(t)
			val := make([]byte, 64)
			for ctx.Err() == nil {
				since := time.Since(time.Unix(lastSave.Load(), 0))
				if since >= quietFrom && since < quietTo {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				pipe := c.Pipeline()
				for range 200 {
					pipe.Set(ctx, "fill:"+strconv.Itoa(1+rand.IntN(earlyKeys)), val, 0)
				}
				if _, err := pipe.Exec(ctx); err == nil {
					writes.Add(200)
				}
			}
		}()
	}
	return func() int64 { cancel(); wg.Wait(); return writes.Load() }
}

// nextSave waits for the server's next completed save and says when it
// started and what it copied.
func nextSave(t *testing.T, srv *testredis.Server, within time.Duration) savedAt {
	t.Helper()
	c := srv.Client(t)
	ctx := context.Background()
	first := persistence(ctx, c)
	deadline := time.Now().Add(within)
	for {
		p := persistence(ctx, c)
		if p["rdb_last_save_time"] != first["rdb_last_save_time"] && p["rdb_bgsave_in_progress"] == "0" {
			was, _ := strconv.ParseInt(first["rdb_last_save_time"], 10, 64)
			now, _ := strconv.ParseInt(p["rdb_last_save_time"], 10, 64)
			took, _ := strconv.ParseInt(p["rdb_last_bgsave_time_sec"], 10, 64)
			cow, _ := strconv.ParseInt(p["rdb_last_cow_size"], 10, 64)
			if p["rdb_last_bgsave_status"] != "ok" {
				t.Fatalf("the save failed: %v", p)
			}
			return savedAt{startedAfter: time.Duration(now-took-was) * time.Second, cow: cow}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no save completed within %s: %v", within, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestForkBudgetEarlySave: "BGSAVE during low-traffic periods". Redis alone
// saves when its save point comes due, in a burst of writes; with the
// guardian the save starts early, in the lull before it (fork_budget's early
// save), and its child copies less. The test asserts what the guardian did
// (the save started inside the lull, before Redis would have saved) and logs
// the copy-on-write of both, which docs/benchmarks.md records. On the code
// before early saves, the guarded save started at 21 s like Redis's own.
func TestForkBudgetEarlySave(t *testing.T) {
	t.Parallel()
	for _, b := range testredis.Matrix(t) {
		if b.Name != "redis-7.0" && b.Name != "valkey-8.1" {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			run := func(guard bool) savedAt {
				srv := testredis.Start(t, testredis.Options{Build: b, Save: earlySavePoint})
				srv.Fill(t, earlyKeys, 64)
				if err := srv.Client(t).Save(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
				if guard {
					startFleet(t, []*testredis.Server{srv}, func(policy.Remedies) {})
				}
				stop := burstyWriter(t, srv)
				s := nextSave(t, srv, 60*time.Second)
				w := stop()
				t.Logf("guardian %v: save started %s after the last, copy-on-write %s, %d writes", guard, s.startedAfter, policy.HumanBytes(s.cow), w)
				return s
			}
			var alone, guarded savedAt
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); alone = run(false) }()
			go func() { defer wg.Done(); guarded = run(true) }()
			wg.Wait()
			if t.Failed() {
				return
			}
			if alone.startedAfter < quietTo {
				t.Fatalf("Redis alone saved %s after its last save, in the lull: the setup must make it save in the burst after", alone.startedAfter)
			}
			// Whole seconds: a save started at 15.9 s reads 15 s.
			if guarded.startedAfter < quietFrom-time.Second || guarded.startedAfter >= quietTo {
				t.Errorf("with the guardian the save started %s after the last, want inside the lull [%s, %s) before Redis's own at 21 s",
					guarded.startedAfter, quietFrom, quietTo)
			}
			t.Logf("%s: copy-on-write %s alone (save in a burst), %s with the early save (ratio %s)", b.Name,
				policy.HumanBytes(alone.cow), policy.HumanBytes(guarded.cow), ratio(guarded.cow, alone.cow))
		})
	}
}

func ratio(a, b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}
