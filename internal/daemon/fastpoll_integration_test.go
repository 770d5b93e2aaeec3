package daemon_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// slowInterval is far longer than a fast poll (50 ms): a tick that came less
// than maxFastGap after the one before it was a close poll, not a regular tick.
// The margin is for a loaded machine; how fast close polling makes a Redis
// without a log writable again is make bench's figure 5.
const (
	slowInterval = 5 * time.Second
	maxFastGap   = slowInterval / 5
)

// blindFault is a failed save with no log line to wake the guardian.
type blindFault struct {
	name string
	opts testredis.Options
	// inject makes a save fail the way Redis fails it by itself.
	inject func(t *testing.T, g *guardian, srv *testredis.Server, c *redis.Client) (lift func())
	// predictive: stop_writes' predictive toggle stays on, and the host shows the
	// fault: the tick before the save comes due must predict it (0 rejected).
	// Off, the failure itself must be seen by close polling.
	predictive bool
}

var blindFaults = []blindFault{
	{
		// A save child (about 10 s) killed once the guardian has seen it run:
		// it then polls closely, so the child's end is seen within a fast poll.
		name: "child_killed",
		inject: func(t *testing.T, g *guardian, srv *testredis.Server, c *redis.Client) func() {
			srv.SlowChild(t)
			if err := c.BgSave(ctxT(t)).Err(); err != nil {
				t.Fatalf("BGSAVE: %v", err)
			}
			g.waitTicks(1)
			srv.KillChild(t, syscall.SIGKILL)
			return func() { unslowChild(t, srv, c) }
		},
	},
	{
		// A fork failure at an automatic save ("save 2 1" under writes), with
		// the prediction off: the guardian polls closely around the moment the
		// save point comes due, so the failure there is seen within a fast poll.
		name:   "fork_failure_at_save_point",
		opts:   testredis.Options{Save: "2 1"},
		inject: failForkBetweenSaves,
	},
	{
		// The same fault with the prediction on: the tick just before the save
		// comes due reads the host again and sees RLIMIT_NPROC reached, so the
		// toggle comes first, although no regular tick came in between.
		name:       "fork_failure_at_save_point_predicted",
		opts:       testredis.Options{Save: "2 1"},
		inject:     failForkBetweenSaves,
		predictive: true,
	},
}

// failForkBetweenSaves makes forks fail right after an automatic save, once the
// guardian follows the saves (it ticked with the keys changing, so it knows when
// each one comes due). The next save is then 2 to 3 s away, the guardian's next
// regular tick 5 s: only its ticks around the due save can see the fault first.
func failForkBetweenSaves(t *testing.T, g *guardian, srv *testredis.Server, _ *redis.Client) func() {
	srv.WaitFor(t, "an automatic save", waitLong, func(i map[string]string) bool { return i["rdb_saves"] != "0" })
	g.waitTicks(1)
	saves := srv.Info(t)["rdb_saves"]
	srv.WaitFor(t, "the next automatic save", waitLong, func(i map[string]string) bool {
		return i["rdb_saves"] != saves && i["rdb_bgsave_in_progress"] == "0"
	})
	return srv.FailFork(t)
}

// TestFastWithoutLog: with Redis logging to stdout (no log file to follow) and a
// 5 s interval, a failed save is still lifted by a close poll, not at the next
// regular tick, because the guardian polls closely while a child runs and
// around a due save point (fast_poll): the tick that toggled came within
// maxFastGap of the one before it.
func TestFastWithoutLog(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		for _, f := range blindFaults {
			t.Run(b.Name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				fastWithoutLog(t, b, f)
			})
		}
	}
}

func fastWithoutLog(t *testing.T, b testredis.Build, f blindFault) {
	opts := f.opts
	opts.Build, opts.LogToStdout = b, true
	srv := testredis.Start(t, opts)
	c := srv.Client(t)
	ticks := &tickSpans{}
	g := startGuardian(t, srv, guardianOpts{Interval: slowInterval, Report: ticks.report, Remedies: func(rs policy.Remedies) {
		policy.ConfigOf[*policy.StopWritesConfig](rs).Predictive = f.predictive
	}})
	g.waitTicks(1)
	g.waitEntry(fieldsEq{"event": string(events.LogSource)}, nil)
	w := srv.StartWriter(t, time.Millisecond)
	waitWrites(t, w, 50)

	lift := f.inject(t, g, srv, c)
	applied := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}, nil)
	waitConfig(t, c, policy.SettingStopWrites, "no")
	waitWrites(t, w, 200)
	st := w.Stats()
	lift()

	if f.predictive {
		if st.Rejected != 0 || applied.str("reason") != policy.IDForkNprocExhausted {
			t.Errorf("%d writes rejected, toggle %s; want it predicted (%s) before the save, none rejected", st.Rejected, applied, policy.IDForkNprocExhausted)
		}
		return
	}
	if st.Rejected == 0 {
		t.Fatalf("no write rejected, toggle %s: the fault did not take effect before a prediction", applied)
	}
	window := st.FirstOKAfterReject.Sub(st.FirstReject)
	gap := ticks.gapBefore(t, applied)
	t.Logf("%s without a log, interval %s: %d writes rejected, writable again %s after the first reject (toggle reason %s), by a tick %s after the one before",
		f.name, slowInterval, st.Rejected, window.Round(time.Millisecond), applied.str("reason"), gap.Round(time.Millisecond))
	if st.FirstOKAfterReject.IsZero() {
		t.Errorf("writes still rejected after the toggle: %+v", st)
	}
	if gap > maxFastGap {
		t.Errorf("the toggle came from a tick %s after the one before it, want a close poll (within %s; the interval is %s)", gap.Round(time.Millisecond), maxFastGap, slowInterval)
	}
}
