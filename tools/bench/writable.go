package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// writer is a steady write load (one SET per millisecond, each tried once) that keeps
// the time of every outcome, for the windows and the plot.
type writer struct {
	client *redis.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	oks     []time.Time
	rejects []time.Time
}

func startWriter(t *benchT, srv *testredis.Server) *writer {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, MaxRetries: -1, PoolSize: 1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, DisableIdentity: true})
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{client: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for n := 1; ; n++ {
			err := c.Set(ctx, "wload:"+strconv.Itoa(n), n, 0).Err()
			if ctx.Err() != nil {
				return
			}
			at := time.Now()
			w.mu.Lock()
			if err == nil {
				w.oks = append(w.oks, at)
			} else {
				w.rejects = append(w.rejects, at)
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *writer) stop() {
	w.cancel()
	<-w.done
	_ = w.client.Close()
}

func (w *writer) counts() (ok, rejected int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.oks), len(w.rejects)
}

// waitOK waits until n more writes succeeded.
func (w *writer) waitOK(t *benchT, n int, timeout time.Duration) {
	t.Helper()
	ok0, _ := w.counts()
	deadline := time.Now().Add(timeout)
	for {
		ok, rej := w.counts()
		if ok >= ok0+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer: %d ok writes of %d wanted within %s (%d rejected)", ok-ok0, n, timeout, rej)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// window is what one fault run measured.
type window struct {
	rejected      int           // writes rejected from the first reject to the first accept
	toWritable    time.Duration // first rejected write to the first accepted one after it
	predicted     bool          // the guardian toggled before any write was rejected
	detection     time.Duration // first rejected write to the guardian's MISCONF finding; -1 if none
	rejectOffsets []time.Duration
}

// result computes the window; recovered says writes were accepted after a reject.
func (w *writer) result(inject time.Time) (window, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var res window
	for _, r := range w.rejects {
		res.rejectOffsets = append(res.rejectOffsets, r.Sub(inject))
	}
	if len(w.rejects) == 0 {
		return res, true
	}
	first := w.rejects[0]
	for _, ok := range w.oks {
		if ok.After(first) {
			res.toWritable = ok.Sub(first)
			for _, r := range w.rejects {
				if r.Before(ok) {
					res.rejected++
				}
			}
			return res, true
		}
	}
	res.rejected = len(w.rejects)
	return res, false
}

// fault is one real way an RDB save fails, as in internal/daemon's integration tests.
type fault struct {
	name    string
	opts    testredis.Options
	prepare func(t *benchT, srv *testredis.Server, c *redis.Client)
	// inject starts the fault; lift ends it. With auto, the save that fails is
	// Redis's own next automatic one (save 1 1 under the writes: about every 2 s),
	// as in production, where the host may show the fault before the save runs
	// into it; otherwise inject makes a save fail itself.
	inject func(t *benchT, srv *testredis.Server, c *redis.Client) (lift func())
	auto   bool
}

// autoSave is the save point of the auto faults: a save about every 2 s under
// the writer's load.
const autoSave = "1 1"

var faults = []fault{
	{
		name: "fork_failure",
		opts: testredis.Options{Save: autoSave},
		auto: true,
		inject: func(t *benchT, srv *testredis.Server, c *redis.Client) func() {
			return srv.FailFork(t)
		},
	},
	{
		name: "disk_full",
		opts: testredis.Options{TmpfsSize: "4m", Save: autoSave},
		auto: true,
		// Save once so the estimate is the real file's size, not used_memory.
		prepare: func(t *benchT, srv *testredis.Server, c *redis.Client) { saveOnce(t, srv, c) },
		inject: func(t *benchT, srv *testredis.Server, c *redis.Client) func() {
			return srv.FillDisk(t)
		},
	},
	{
		name: "permission_denied",
		opts: testredis.Options{Save: autoSave},
		auto: true,
		inject: func(t *benchT, srv *testredis.Server, c *redis.Client) func() {
			return srv.DenyDir(t)
		},
	},
	{
		// Killed mid-save, 1.5 s into a slow child (as the OOM killer takes a
		// child whose copy-on-write grew): nothing on the host shows it coming.
		name:    "child_killed",
		prepare: func(t *benchT, srv *testredis.Server, c *redis.Client) { srv.SlowChild(t) },
		inject: func(t *benchT, srv *testredis.Server, c *redis.Client) func() {
			if err := c.BgSave(context.Background()).Err(); err != nil {
				t.Fatalf("BGSAVE: %v", err)
			}
			srv.ChildPID(t, 10*time.Second)
			time.Sleep(1500 * time.Millisecond)
			srv.KillChild(t, syscall.SIGKILL)
			return func() {
				if err := c.ConfigSet(context.Background(), "rdb-key-save-delay", "0").Err(); err != nil {
					t.Fatalf("CONFIG SET rdb-key-save-delay 0: %v", err)
				}
			}
		},
	},
}

// saveFailed reports whether the last save failed and none is running.
func saveFailed(c *redis.Client) bool {
	raw, err := c.Info(context.Background(), "persistence").Result()
	return err == nil && strings.Contains(raw, "rdb_last_bgsave_status:err") && strings.Contains(raw, "rdb_bgsave_in_progress:0")
}

func saveOnce(t *benchT, srv *testredis.Server, c *redis.Client) {
	t.Helper()
	if err := c.BgSave(context.Background()).Err(); err != nil {
		t.Fatalf("BGSAVE: %v", err)
	}
	srv.WaitFor(t, "first save ok", 20*time.Second, func(i map[string]string) bool {
		return i["rdb_bgsave_in_progress"] == "0" && i["rdb_last_bgsave_status"] == "ok" && i["rdb_saves"] != "0"
	})
}

// Modes of the time-to-writable runs.
const (
	modeNone     = "no guardian"
	modeFollower = "guardian 1s + log follower"
	modeNoLog    = "guardian 1s, no log line"
	modePredict  = "guardian 1s, disk full predicted"
)

// writableRun injects one fault under a write load and measures the window.
// noGuardianHold is how long the fault lasts without a guardian before it is lifted
// and an operator's BGSAVE restores writes.
func writableRun(t *benchT, f fault, mode string, noGuardianHold time.Duration) window {
	opts := f.opts
	// A Redis logging to stdout leaves no log file to follow: the guardian sees the
	// failure in INFO at its next tick only (figure 5).
	opts.LogToStdout = mode == modeNoLog
	srv := testredis.Start(t, opts)
	c := srv.Client(t)
	if f.prepare != nil {
		f.prepare(t, srv, c)
	}
	var g *inproc
	if mode != modeNone {
		g = startInproc(t, srv, inprocOpts{interval: time.Second})
		g.waitTicks(t, 1)
	}
	w := startWriter(t, srv)
	w.waitOK(t, 50, 10*time.Second)
	if g != nil {
		// A random phase against the guardian's tick: otherwise every run would
		// inject at the same moment after a tick and a detection delay that is
		// uniform over the interval would look constant.
		time.Sleep(rand.N(time.Second))
	}

	inject := time.Now()
	var lift func()
	if mode == modePredict {
		// Fill the disk, give the guardian its tick to see that the next save cannot
		// fit, then let Redis's save fail.
		lift = srv.FillDisk(t)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, _, ok := g.applied(); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the guardian did not toggle %s within 5s of the disk filling up", policy.SettingStopWrites)
			}
			time.Sleep(5 * time.Millisecond)
		}
		_ = c.BgSave(context.Background()).Err()
		srv.WaitFor(t, "the save to fail", 10*time.Second, testredis.SaveStatus("err"))
		w.waitOK(t, 200, 10*time.Second)
	} else {
		lift = f.inject(t, srv, c)
		if f.auto {
			srv.WaitFor(t, "the next automatic save to fail", 15*time.Second, testredis.SaveStatus("err"))
		}
		if mode == modeNone {
			time.Sleep(noGuardianHold)
			lift()
			lift = func() {}
			// What an operator does once the cause is fixed: save, which clears the
			// error (Redis's own retry waits for the save point's period).
			_ = c.BgSave(context.Background()).Err()
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if res, ok := w.result(inject); ok && res.toWritable > 0 {
				break
			}
			if _, rej := w.counts(); rej == 0 && g != nil && saveFailed(c) {
				if _, _, ok := g.applied(); ok {
					// The guardian acted before the failed save could reject
					// anything (it saw the disk fill up): zero rejected.
					break
				}
			}
			if time.Now().After(deadline) {
				_, rej := w.counts()
				if rej == 0 {
					t.Fatalf("no write was rejected within 15s of the fault (did it take effect?)")
				}
				t.Fatalf("writes still rejected 15s after the fault")
			}
			time.Sleep(5 * time.Millisecond)
		}
		w.waitOK(t, 100, 10*time.Second)
	}
	w.stop()
	lift()
	res, _ := w.result(inject)
	res.detection = -1
	if g != nil && len(res.rejectOffsets) > 0 {
		if at, ok := g.raised(policy.IDMisconfRDB, policy.IDBgsaveFailed); ok {
			res.detection = at.Sub(inject.Add(res.rejectOffsets[0]))
		}
	}
	if g != nil {
		if at, reason, ok := g.applied(); ok && reason != policy.IDMisconfRDB && (len(res.rejectOffsets) == 0 || at.Before(inject.Add(res.rejectOffsets[0]))) {
			res.predicted = true
		}
	}
	if mode == modePredict && !res.predicted {
		t.Logf("the guardian toggled, but not on a prediction")
	}
	return res
}

// fmtDur shows a duration with a precision that suits its size.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}
