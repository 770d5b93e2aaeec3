package daemon_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/forkslot"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// forkBudgetSave is the save point of the fork budget test: a save 6 s after
// the last one once a key changed.
const forkBudgetSave = "5 1"

// startSavesDueTogether starts three servers whose automatic saves come due in
// the same second, each child living about 2 s (200 keys, rdb-key-save-delay
// 10 ms a key): a SAVE on all three at once sets the same lastsave, and one key
// written to each after start makes the save point's condition hold.
func startSavesDueTogether(t *testing.T, b testredis.Build) []*testredis.Server {
	t.Helper()
	srvs := make([]*testredis.Server, 3)
	for i := range srvs {
		srvs[i] = testredis.Start(t, testredis.Options{Build: b, Save: forkBudgetSave})
		srvs[i].Fill(t, 200, 16)
	}
	saveTogether(t, srvs)
	return srvs
}

// saveTogether runs SAVE on every server at once, so their lastsave is the
// same second and their automatic saves come due together again, and then
// makes every key take 10 ms to save.
func saveTogether(t *testing.T, srvs []*testredis.Server) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(srvs))
	for i, s := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.Client(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// A SAVE of the keys at their delay would end seconds apart.
			if err := c.ConfigSet(ctx, "rdb-key-save-delay", "0").Err(); err != nil {
				errs[i] = err
				return
			}
			// An automatic save may have started meanwhile: wait it out.
			for {
				err := c.Save(ctx).Err()
				if err == nil || ctx.Err() != nil {
					errs[i] = err
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			errs[i] = c.ConfigSet(ctx, "rdb-key-save-delay", "10000").Err()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("prepare server %d: %v", i, err)
		}
	}
}

// forkObserver samples rdb_bgsave_in_progress of every server every 50 ms, from
// the test: an observer independent of the guardian.
type forkObserver struct {
	mu        sync.Mutex
	maxAtOnce int
	saves     []int // completed saves (rdb_last_save_time changes) per server
}

func observeForks(t *testing.T, srvs []*testredis.Server) (*forkObserver, func()) {
	t.Helper()
	o := &forkObserver{saves: make([]int, len(srvs))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	last := make([]string, len(srvs))
	go func() {
		defer close(done)
		cs := make([]*redis.Client, len(srvs))
		for i, s := range srvs {
			cs[i] = s.Client(t)
		}
		for ctx.Err() == nil {
			n := 0
			for i, c := range cs {
				info := persistence(ctx, c)
				if info["rdb_bgsave_in_progress"] == "1" {
					n++
				}
				if ls := info["rdb_last_save_time"]; ls != "" && last[i] != "" && ls != last[i] {
					o.mu.Lock()
					o.saves[i]++
					o.mu.Unlock()
				}
				if ls := info["rdb_last_save_time"]; ls != "" {
					last[i] = ls
				}
			}
			o.mu.Lock()
			o.maxAtOnce = max(o.maxAtOnce, n)
			o.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return o, func() { cancel(); <-done }
}

// persistence reads INFO persistence as a map (empty on error).
func persistence(ctx context.Context, c *redis.Client) map[string]string {
	out := map[string]string{}
	raw, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return out
	}
	for _, l := range strings.Split(raw, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = v
		}
	}
	return out
}

func (o *forkObserver) snapshot() (int, []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.maxAtOnce, append([]int(nil), o.saves...)
}

// writeOneKeyEach makes every server's save point hold.
func writeOneKeyEach(t *testing.T, srvs []*testredis.Server) {
	t.Helper()
	for i, s := range srvs {
		if err := s.Client(t).Set(context.Background(), "due", strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitAllSaved waits until every server has completed a save since the
// observer started, within within.
func waitAllSaved(t *testing.T, o *forkObserver, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, saves := o.snapshot()
		all := true
		for _, n := range saves {
			all = all && n > 0
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("saves completed per server %v, want every server to save within %s", saves, within)
		}
		time.Sleep(poll)
	}
}

// TestForkBudgetRealSaves: three servers whose automatic saves come due
// together. Without the guardian their children run at once (the measurement
// the remedy answers: three children in one memory group, the OOM killer took a
// server); with one guardian watching all three, never two at once, every
// server saves within its save point and max_deferral, and afterwards save is
// back at its original and every ledger empty. On the code before fork_budget
// the guarded run saw 3 children at once.
func TestForkBudgetRealSaves(t *testing.T) {
	t.Parallel()
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("without the guardian", func(t *testing.T) {
				srvs := startSavesDueTogether(t, b)
				o, stop := observeForks(t, srvs)
				writeOneKeyEach(t, srvs)
				waitAllSaved(t, o, 30*time.Second)
				stop()
				most, _ := o.snapshot()
				t.Logf("%s without the guardian: %d fork children at once", b.Name, most)
				if most < 2 {
					t.Fatalf("without the guardian at most %d child ran at once; the setup must make saves overlap", most)
				}
			})
			t.Run("with the guardian", func(t *testing.T) {
				srvs := startSavesDueTogether(t, b)
				maxDeferral := 40 * time.Second
				built, holds := startFleet(t, srvs, func(rs policy.Remedies) {
					policy.ConfigOf[*policy.ForkBudgetConfig](rs).MaxDeferral = maxDeferral
				})
				saveTogether(t, srvs) // due together from now, however long the start took
				o, stop := observeForks(t, srvs)
				writeOneKeyEach(t, srvs)
				// Each save waits at most for the two before it (2 s children).
				waitAllSaved(t, o, 6*time.Second+maxDeferral)
				stop()
				most, saves := o.snapshot()
				t.Logf("%s with the guardian: %d fork children at once, saves %v, %d holds of save", b.Name, most, saves, holds.Load())
				if most != 1 {
					t.Errorf("with the guardian %d fork children ran at once, want 1", most)
				}
				// save back at its original, nothing held.
				deadline := time.Now().Add(waitLong)
				for i, s := range srvs {
					for {
						got, err := s.Client(t).ConfigGet(context.Background(), "save").Result()
						var held []remediate.Change // fork_budget's; other remedies' holds are theirs
						for _, c := range built[i].Executor.Changes() {
							if c.Setting == policy.SettingSave || c.Remedy == policy.RemedyForkBudget {
								held = append(held, c)
							}
						}
						if err == nil && got["save"] == forkBudgetSave && len(held) == 0 {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("server %d: save %v (%v), ledger %+v; want %q and nothing held", i, got, err, held, forkBudgetSave)
						}
						time.Sleep(poll)
					}
				}
				if n := holds.Load(); n == 0 {
					t.Errorf("no save was deferred through the ledger: the run did not test the hold")
				}
			})
		})
	}
}

// startFleet runs one guardian (one config, one runtime dir) watching srvs, as
// `redis-guardian run` with several instances builds them.
// It returns the instances and a count of fork_budget's holds of save.
// tune, when given, adjusts each instance's loop (its interval) before it runs.
func startFleet(t *testing.T, srvs []*testredis.Server, edit func(policy.Remedies), tune ...func(i int, l *daemon.Instance)) ([]*instance.Built, *atomic.Int64) {
	t.Helper()
	holds := &atomic.Int64{}
	onEvent := func(ev events.Name, remedy, _ string) {
		if ev == events.RemedyApplied && remedy == policy.RemedyForkBudget {
			holds.Add(1)
		}
	}
	cfg := config.Default()
	cfg.Interval, cfg.StateDir, cfg.RuntimeDir = time.Second, t.TempDir(), t.TempDir()
	cfg.Timeouts = config.Timeouts{Connect: 2 * time.Second, Command: time.Second}
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	var out []*instance.Built
	for i, s := range srvs {
		in := cfg.Instances[0]
		in.Name, in.Addr = "fb"+strconv.Itoa(i), s.Socket
		in.Remedies = testRemedies()
		edit(in.Remedies)
		in.Thresholds, in.IgnoreFindings = policy.DefaultThresholds(), nil
		b, err := instance.Build(cfg, in, instance.Options{Log: log, OnEvent: onEvent})
		if err != nil {
			t.Fatalf("build instance %d: %v", i, err)
		}
		for _, f := range tune {
			f(i, b.Loop)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Loop.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
			b.Close()
		})
		out = append(out, b)
	}
	return out, holds
}

// TestForkBudgetConfigRewriteDuringHold: a CONFIG REWRITE while fork_budget
// holds save "" writes `save ""` into a config file that had no save line (Redis
// ran on its command line's or the default save points). That is the critical
// held_value_in_config_file during the hold, and once the slot frees and save is
// given back, the guardian's CONFIG REWRITE puts the file right: a restart must
// not run without saves. On the code before, the file's missing line was
// recorded as "", the held value itself, and the file kept `save ""`.
func TestForkBudgetConfigRewriteDuringHold(t *testing.T) {
	t.Parallel()
	testredis.RequireRoot(t)
	srv := testredis.Start(t, testredis.Options{Save: "3 1", ConfigText: "# the admin's file: no save line\n"})
	c := srv.Client(t)
	g := startGuardian(t, srv, guardianOpts{})
	g.waitTicks(1)
	// Another guardian's instance holds the host's only slot (the helper's
	// runtime dir is the state dir).
	other := forkslot.New(g.StateDir, 1, "other")
	if ok, err := other.Take(); !ok || err != nil {
		t.Fatalf("take the slot from the test: %v, %v", ok, err)
	}
	t.Cleanup(func() { _ = other.Release() })
	if err := c.Set(ctxT(t), "due", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, c, policy.SettingSave, "")
	if err := c.Do(ctxT(t), "CONFIG", "REWRITE").Err(); err != nil {
		t.Fatalf("CONFIG REWRITE: %v", err)
	}
	if got, ok := fileLine(t, srv.ConfigFile, policy.SettingSave); !ok || got != "" {
		t.Fatalf("after CONFIG REWRITE the file says save %q (line %v); the test needs the held \"\" in it", got, ok)
	}
	g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDHeldValueInConfigFile}, nil)
	g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDForkDeferred}, nil)

	if err := other.Release(); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, c, policy.SettingSave, "3 1")
	srv.WaitFor(t, "the deferred save", waitLong, func(i map[string]string) bool {
		return i["rdb_changes_since_last_save"] == "0" && i["rdb_bgsave_in_progress"] == "0" && i["rdb_last_bgsave_status"] == "ok"
	})
	deadline := time.Now().Add(waitLong)
	for {
		got, ok := fileLine(t, srv.ConfigFile, policy.SettingSave)
		if ok && policy.SameValue(policy.SettingSave, got, "3 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file still says save %q (line %v) after the give-back: a restart would run without saves", got, ok)
		}
		time.Sleep(poll)
	}
	for _, ch := range ledgerChanges(t, g.StateDir) {
		if ch.Setting == policy.SettingSave {
			t.Errorf("ledger still holds %+v", ch)
		}
	}
}

// fileLine is what a config file's deciding line says for setting, and whether
// it has one.
func fileLine(t *testing.T, path, setting string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := monitor.ParseConfigFile(string(b), []string{setting})[setting]
	return l.Value, ok
}

// TestForkBudgetWontFitRealCgroup: a server in a memory cgroup whose limit
// leaves less room than its next save's expected copy-on-write (no save
// measured yet: a quarter of its RSS, with the margin): the due save waits,
// fork_wont_fit says why, and once the limit is raised save is given back and
// the save runs. On the code before, the save forked into the tight group.
func TestForkBudgetWontFitRealCgroup(t *testing.T) {
	t.Parallel()
	cg := testredis.MemoryCgroup(t, 0)
	srv := testredis.Start(t, testredis.Options{Save: "5 1", MemCgroup: cg})
	srv.Fill(t, 40000, 1000)
	c := srv.Client(t)
	if err := c.Save(ctxT(t)).Err(); err != nil { // no fork: no copy-on-write measured
		t.Fatalf("SAVE: %v", err)
	}
	// Room of 4 MiB beside the group's working set (the page cache of the RDB
	// file is reclaimed to reach it); the expected copy-on-write is ~10 MiB.
	cg.SetLimit(t, cg.WorkingSet(t)+4<<20)
	g := startGuardian(t, srv, guardianOpts{})
	g.waitTicks(1)
	if err := c.Set(ctxT(t), "due", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	f := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDForkWontFit}, nil)
	t.Logf("fork_wont_fit: %s", f.str("cause"))
	waitConfig(t, c, policy.SettingSave, "")
	if got := srv.Info(t)["rdb_changes_since_last_save"]; got == "0" {
		t.Fatalf("a save ran although it did not fit")
	}
	cg.SetLimit(t, 1<<30)
	waitConfig(t, c, policy.SettingSave, "5 1")
	srv.WaitFor(t, "the deferred save", waitLong, func(i map[string]string) bool {
		return i["rdb_changes_since_last_save"] == "0" && i["rdb_bgsave_in_progress"] == "0" && i["rdb_last_bgsave_status"] == "ok"
	})
	for _, ch := range ledgerChanges(t, g.StateDir) {
		if ch.Setting == policy.SettingSave {
			t.Errorf("ledger still holds %+v", ch)
		}
	}
}
