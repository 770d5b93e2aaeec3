package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// Modes of figure 9 and 10.
const (
	modeAlone    = "Redis alone"
	modeGuarded  = "guardian"
	fbServers    = 3
	fbValueSize  = 1000
	fbRoomFactor = 1.6 // the group's room, in copies-on-write of one save
)

// fbSize is one size of figure 9's servers: keys of fbValueSize bytes each, the
// save point's seconds and the per-key delay of the save child (so it lives
// through a full pass of the writer).
type fbSize struct {
	keys      int
	saveAfter int   // seconds after the last save
	keyDelay  int64 // rdb-key-save-delay, µs
}

// forkRun is one run of figure 9: three servers in one memory cgroup whose
// automatic saves come due together under write load.
type forkRun struct {
	mode       string
	limit      int64 // the group's limit
	cowOne     int64 // the copy-on-write of one save it was sized from
	oomKills   int64 // the group's OOM kills (memory.oom_control oom_kill)
	mainKilled int   // servers whose main process died
	childKills int   // save children killed ("terminated by signal 9")
	maxAtOnce  int   // most fork children at once (INFO, every 20 ms)
	peak       int64 // memory.max_usage_in_bytes over the run (page cache included)
	peakAnon   int64 // the group's anonymous memory at its highest (20 ms samples)
	delays     []time.Duration
	childRan   []time.Duration // how long each server's first save child ran
	unsaved    int             // servers with no save in the run (dead or never ran)
	holds      int             // fork_budget's remedy_applied events
	firstAct   *time.Duration  // the guardian's first fork_budget action, from the first save's due time
	restored   bool            // save back at its original on every live server after the guardian stopped
	rss        int64           // the servers' RSS together, before the saves
}

// measureForkBudget interleaves runs with and without the guardian; cow is the
// copy-on-write of one save, measured once first.
func measureForkBudget(t *benchT, size fbSize, reps int, verbose bool) []forkRun {
	var cal fbCalibration
	if err := scenario("fork budget: one save's copy-on-write", verbose, func(t *benchT) { cal = fbCalibrate(t, size) }); err != nil {
		t.Fatalf("%v", err)
	}
	t.Logf("one save's copy-on-write: %d MiB, its child ran %s", cal.cow>>20, cal.life)
	var out []forkRun
	for rep := range reps {
		modes := []string{modeAlone, modeGuarded}
		if rep%2 == 1 {
			modes = []string{modeGuarded, modeAlone}
		}
		for _, mode := range modes {
			var r forkRun
			err := scenario(fmt.Sprintf("fork budget / %s #%d", mode, rep+1), verbose, func(t *benchT) { r = forkBudgetRun(t, size, mode, cal) })
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				t.Errorf("%v", err)
				continue
			}
			out = append(out, r)
		}
	}
	return out
}

// fbStart starts n servers in cg (no save point yet: filling must not fork),
// filled in parallel.
func fbStart(t *benchT, cg *testredis.MemCgroup, n int, size fbSize) []*testredis.Server {
	srvs := make([]*testredis.Server, n)
	for i := range srvs {
		srvs[i] = testredis.Start(t, testredis.Options{MemCgroup: cg, Save: "3600 1000000000", Args: []string{"--rdbcompression", "no"}})
	}
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Go(func() { s.Fill(t, size.keys, fbValueSize) })
	}
	wg.Wait()
	return srvs
}

// fbCalibration is one save under the writer: its copy-on-write and how long its
// child ran.
type fbCalibration struct {
	cow  int64
	life time.Duration
}

// fbCalibrate measures one save's copy-on-write: one server, the writer
// overwriting every key in a loop while a slowed BGSAVE runs.
func fbCalibrate(t *benchT, size fbSize) fbCalibration {
	cg := testredis.MemoryCgroup(t, 0)
	srv := fbStart(t, cg, 1, size)[0]
	c := srv.Client(t)
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "rdb-key-save-delay", strconv.FormatInt(size.keyDelay, 10)).Err(); err != nil {
		t.Fatalf("CONFIG SET rdb-key-save-delay: %v", err)
	}
	stop := fbWriters(t, []*testredis.Server{srv}, size.keys)
	defer stop()
	t0 := time.Now()
	if err := c.BgSave(ctx).Err(); err != nil {
		t.Fatalf("BGSAVE: %v", err)
	}
	srv.WaitFor(t, "the calibration save", 5*time.Minute, func(i map[string]string) bool {
		return i["rdb_bgsave_in_progress"] == "0" && i["rdb_last_cow_size"] != "" && i["rdb_last_cow_size"] != "0"
	})
	cow, _ := strconv.ParseInt(srv.Info(t)["rdb_last_cow_size"], 10, 64)
	return fbCalibration{cow: cow, life: time.Since(t0)}
}

// fbWriters overwrites every key of each server in a loop (testredis Overwrite,
// the copy-on-write writer) until the returned func is called.
func fbWriters(t *benchT, srvs []*testredis.Server, keys int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range srvs {
		c := s.Client(t)
		wg.Go(func() {
			// Closed at once: a client of a dead server would dial it every second.
			defer func() { _ = c.Close() }()
			// Until the server dies (the OOM killer may take it): no dialling a dead one.
			for ctx.Err() == nil && pidAlive(s.PID) {
				if err := s.Overwrite(c, keys, fbValueSize); err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// forkBudgetRun is one run: the saves are made due together (a SAVE on every
// server in the same second, then the save point set), the group's limit set to
// the servers' working set plus fbRoomFactor copies-on-write, and the writers
// started; the run ends once every server saved, or died, or a deadline passed.
func forkBudgetRun(t *benchT, size fbSize, mode string, cal fbCalibration) forkRun {
	cow := cal.cow
	cg := testredis.MemoryCgroup(t, 0)
	srvs := fbStart(t, cg, fbServers, size)
	r := forkRun{mode: mode, cowOne: cow}
	lastSave := fbSyncSaves(t, srvs, size)
	// The writers start at once, as in production: the guardian sees the changes
	// pile up before the save comes due.
	stopWriters := fbWriters(t, srvs, size.keys)
	defer stopWriters()
	var g *inproc
	if mode == modeGuarded {
		g = startFleet(t, srvs, inprocOpts{})
		g.waitTicks(t, 2*fbServers)
	}
	r.rss = fbRSS(t, srvs)
	r.limit = cg.WorkingSet(t) + int64(fbRoomFactor*float64(cow))
	cg.SetLimit(t, r.limit)
	oom0 := cg.OOMKills(t)
	resetPeak(t, cg)
	due := make([]time.Time, len(srvs))
	for i, ls := range lastSave {
		due[i] = time.Unix(ls+int64(size.saveAfter)+1, 0) // Redis saves once now-lastsave > seconds
		if time.Until(due[i]) < time.Second {
			t.Fatalf("the set-up took until %s before the saves came due: lengthen the save point", time.Until(due[i]))
		}
	}
	o := watchForks(t, cg, srvs)
	// Every save within its save point plus max_deferral (5 m), and its child's run.
	deadline := due[0].Add(5*time.Minute + 2*cal.life)
	for !o.finished() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	o.stop()
	stopWriters()
	r.oomKills = cg.OOMKills(t) - oom0
	r.peak = cg.Int(t, peakFile(cg))
	r.maxAtOnce, r.peakAnon = o.maxAtOnce, o.peakAnon
	for i, s := range srvs {
		if !pidAlive(s.PID) {
			r.mainKilled++
		}
		if b, err := os.ReadFile(s.LogFile); err == nil {
			r.childKills += strings.Count(string(b), "terminated by signal 9")
		}
		if o.started[i].IsZero() {
			r.unsaved++
			continue
		}
		r.delays = append(r.delays, o.started[i].Sub(due[i]))
		if !o.ended[i].IsZero() {
			r.childRan = append(r.childRan, o.ended[i].Sub(o.started[i]))
		}
	}
	// Room again, so the guardian's last saves and give-backs are not in a full group.
	cg.SetLimit(t, r.limit+1<<30)
	if g != nil {
		r.holds = countEvents(g, events.RemedyApplied, policy.RemedyForkBudget)
		r.firstAct = fbFirstAction(t, g, due[0])
		if err := g.stop(); err != nil {
			t.Errorf("guardian: %v", err)
		}
		r.restored = fbSaveRestored(t, srvs, size)
	}
	t.Logf("%s: oom kills %d (main %d, child %d), %d children at once, peak %d MiB of %d MiB, delays %v, holds %d",
		mode, r.oomKills, r.mainKilled, r.childKills, r.maxAtOnce, r.peak>>20, r.limit>>20, r.delays, r.holds)
	return r
}

// fbFirstAction is when the guardian first acted for fork_budget (a slot taken or
// save held), from due; it logs every fork_budget event of the run.
func fbFirstAction(t *benchT, g *inproc, due time.Time) *time.Duration {
	var first *time.Duration
	for _, e := range g.logs.All() {
		m := e.ContextMap()
		if m["remedy"] != policy.RemedyForkBudget {
			continue
		}
		d := e.Time.Sub(due)
		t.Logf("%+.3fs %s %v", d.Seconds(), e.Message, m)
		if m[events.FieldKey] == string(events.RemedyApplied) && first == nil {
			first = &d
		}
	}
	return first
}

// fbChildLife is the sum of one save child's per-key delays: it runs longer (the
// sleeps overshoot, and the machine is loaded).
func fbChildLife(size fbSize) time.Duration {
	return time.Duration(int64(size.keys)*size.keyDelay) * time.Microsecond
}

// fbSyncSaves runs SAVE on every server at once, so their last saves fall in the
// same second (it tries again when they straddled one), then sets the save point
// and slows the save child; it returns each server's last save, in Unix seconds.
func fbSyncSaves(t *benchT, srvs []*testredis.Server, size fbSize) []int64 {
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		var wg sync.WaitGroup
		errs := make([]error, len(srvs))
		for i, s := range srvs {
			c := s.Client(t)
			wg.Go(func() { errs[i] = c.Save(ctx).Err() })
		}
		wg.Wait()
		seconds := map[string]bool{}
		for i, s := range srvs {
			if errs[i] != nil {
				t.Fatalf("SAVE on server %d: %v", i, errs[i])
			}
			seconds[s.Info(t)["rdb_last_save_time"]] = true
		}
		if len(seconds) == 1 || attempt == 2 {
			break
		}
	}
	for _, s := range srvs {
		c := s.Client(t)
		if err := c.ConfigSet(ctx, "save", fmt.Sprintf("%d 1", size.saveAfter)).Err(); err != nil {
			t.Fatalf("CONFIG SET save: %v", err)
		}
		if err := c.ConfigSet(ctx, "rdb-key-save-delay", strconv.FormatInt(size.keyDelay, 10)).Err(); err != nil {
			t.Fatalf("CONFIG SET rdb-key-save-delay: %v", err)
		}
	}
	last := make([]int64, len(srvs))
	for i, s := range srvs {
		last[i], _ = strconv.ParseInt(s.Info(t)["rdb_last_save_time"], 10, 64)
	}
	return last
}

// fbSaveRestored: every live server's save is its save point again.
func fbSaveRestored(t *benchT, srvs []*testredis.Server, size fbSize) bool {
	want := fmt.Sprintf("%d 1", size.saveAfter)
	for _, s := range srvs {
		if !pidAlive(s.PID) {
			continue
		}
		got, err := s.Client(t).ConfigGet(context.Background(), "save").Result()
		if err != nil || got["save"] != want {
			return false
		}
	}
	return true
}

// forkWatch polls every server's INFO persistence every 20 ms: the most fork
// children at once, and when each server's first save child of the run started
// and its first save after the synced one ended.
type forkWatch struct {
	mu        sync.Mutex
	maxAtOnce int
	started   []time.Time
	ended     []time.Time // when that first child was seen gone
	saved     []bool      // a save completed (ok or failed) after the synced one
	dead      []bool
	// peakAnon is the group's anonymous memory at its highest sample (v1
	// total_rss, v2 anon): what the OOM killer cannot reclaim without swap.
	peakAnon int64
	cg       *testredis.MemCgroup
	anonKey  string
	cancel   context.CancelFunc
	done     chan struct{}
}

func watchForks(t *benchT, cg *testredis.MemCgroup, srvs []*testredis.Server) *forkWatch {
	n := len(srvs)
	o := &forkWatch{cg: cg, anonKey: "total_rss", started: make([]time.Time, n), ended: make([]time.Time, n), saved: make([]bool, n), dead: make([]bool, n), done: make(chan struct{})}
	if cg.Version == 2 {
		o.anonKey = "anon"
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	cs := make([]*redis.Client, n)
	for i, s := range srvs {
		cs[i] = s.Client(t)
	}
	go func() {
		defer close(o.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			o.sample(ctx, srvs, cs)
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	return o
}

func (o *forkWatch) sample(ctx context.Context, srvs []*testredis.Server, cs []*redis.Client) {
	now, children := time.Now(), 0
	for i, c := range cs {
		o.mu.Lock()
		dead := o.dead[i] || !pidAlive(srvs[i].PID)
		o.dead[i] = dead
		o.mu.Unlock()
		if dead {
			continue
		}
		raw, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			continue
		}
		info := map[string]string{}
		for _, l := range strings.Split(raw, "\r\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				info[k] = v
			}
		}
		busy := info["rdb_bgsave_in_progress"] == "1" || info["aof_rewrite_in_progress"] == "1"
		o.mu.Lock()
		if busy {
			children++
			if o.started[i].IsZero() {
				o.started[i] = now
			}
		}
		// The first child is gone: its save ended (ok, or failed and retried later).
		if !busy && !o.started[i].IsZero() && !o.saved[i] {
			o.saved[i], o.ended[i] = true, now
		}
		o.mu.Unlock()
	}
	anon := testredis.StatField(readOr(filepath.Join(o.cg.Dir, "memory.stat")), o.anonKey)
	o.mu.Lock()
	o.maxAtOnce = max(o.maxAtOnce, children)
	o.peakAnon = max(o.peakAnon, anon)
	o.mu.Unlock()
}

// readOr is a file's text, or "" when it cannot be read.
func readOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// finished: every server saved once since the synced save, or is dead.
func (o *forkWatch) finished() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.saved {
		if !o.saved[i] && !o.dead[i] {
			return false
		}
	}
	return true
}

func (o *forkWatch) stop() { o.cancel(); <-o.done }

// pidAlive: the pid exists and is not a zombie.
func pidAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// fbRSS is the servers' RSS together (VmRSS).
func fbRSS(t *benchT, srvs []*testredis.Server) int64 {
	var n int64
	for _, s := range srvs {
		kib, err := vmRSS(s.PID)
		if err != nil {
			t.Fatalf("%v", err)
		}
		n += kib << 10
	}
	return n
}

// peakFile is the group's peak usage: v1's max_usage_in_bytes (reset per run),
// v2's memory.peak (since the group was made, one group per run).
func peakFile(cg *testredis.MemCgroup) string {
	if cg.Version == 2 {
		return "memory.peak"
	}
	return "memory.max_usage_in_bytes"
}

func resetPeak(t *benchT, cg *testredis.MemCgroup) {
	if cg.Version == 1 {
		if err := os.WriteFile(filepath.Join(cg.Dir, "memory.max_usage_in_bytes"), []byte("0"), 0o644); err != nil {
			t.Fatalf("reset the group's peak: %v", err)
		}
	}
}

// countEvents counts the guardian's log entries of one event by one remedy.
func countEvents(g *inproc, ev events.Name, remedy string) int {
	n := 0
	for _, e := range g.logs.All() {
		m := e.ContextMap()
		if m[events.FieldKey] == string(ev) && m["remedy"] == remedy {
			n++
		}
	}
	return n
}

// forkAgg is figure 9 over the runs of one mode.
type forkAgg struct {
	runs, oomKills, mainKilled, childKills, maxAtOnce, unsaved, holds, restored int
	peak, limit                                                                 int64
	delays                                                                      []time.Duration
}

func (r *report) forkAgg(mode string) forkAgg {
	var a forkAgg
	for _, x := range r.fork {
		if x.mode != mode {
			continue
		}
		a.runs++
		a.oomKills += int(x.oomKills)
		a.mainKilled += x.mainKilled
		a.childKills += x.childKills
		a.maxAtOnce = max(a.maxAtOnce, x.maxAtOnce)
		a.unsaved += x.unsaved
		a.holds += x.holds
		if x.restored {
			a.restored++
		}
		a.peak, a.limit = max(a.peak, x.peak), max(a.limit, x.limit)
		a.delays = append(a.delays, x.delays...)
	}
	return a
}

// forkSummary adds figure 9's rows to the summary.
func (r *report) forkSummary(p func(string, ...any)) {
	a, g := r.forkAgg(modeAlone), r.forkAgg(modeGuarded)
	if a.runs == 0 || g.runs == 0 {
		return
	}
	p("| 9 | OOM kills, %d servers in one memory cgroup with saves due together under writes, with the guardian (n=%d; Redis alone: %d kills, %d of them a main process) | 0 | %d | %s |\n",
		fbServers, g.runs, a.oomKills, a.mainKilled, g.oomKills, met(g.oomKills == 0 && g.mainKilled == 0))
	p("| 9 | Most fork children at once, with the guardian (Redis alone: %d) | 1 | %d | %s |\n", a.maxAtOnce, g.maxAtOnce, met(g.maxAtOnce == 1))
	if len(g.delays) > 0 {
		worst := percentile(g.delays, 100)
		p("| 9 | Save delay past the save point, with the guardian (worst of %d saves; Redis alone: worst %s) | <= max_deferral (5m) | %s | %s |\n",
			len(g.delays), fmtDur(percentile(a.delays, 100)), fmtDur(worst), met(worst <= 5*time.Minute && g.unsaved == 0))
	}
}

// forkSection is figure 9.
func (r *report) forkSection(p func(string, ...any)) {
	if len(r.fork) == 0 {
		return
	}
	s := r.params.forkSize
	p("## 9. Fork budget: saves due together in one memory cgroup\n\n")
	p("Method (issue 23): %d redis-servers in ONE memory cgroup (v1 here, no swap), each filled with %d keys of %d random bytes (`rdbcompression no`). A SAVE on all of them at once (their last saves in the same second, or a second apart), then `save \"%d 1\"` and `rdb-key-save-delay %d` µs (%s of delays per child; the sleeps' granularity and the load make it longer: see how long the children ran): their automatic saves come due together. The group's limit is set to its working set (usage less inactive page cache) plus %.1f times one save's copy-on-write (%s, `rdb_last_cow_size` of a save under the same writer, measured once first), so one save fits and two do not. A writer per server overwrites every key in a loop (testredis `Overwrite`, the copy-on-write writer). A run ends when every server's first save child has ended, or its server died, or at the latest max_deferral (5 m) plus two children's run times after the saves came due (Unsaved: no save child ran by then). Children at once: each server's INFO `rdb_bgsave_in_progress`/`aof_rewrite_in_progress`, polled every 20 ms. OOM kills: the group's `memory.oom_control` oom_kill; which process: the main pid's liveness and \"terminated by signal 9\" in the log (a save child). Peak usage: `memory.max_usage_in_bytes`, reset when the limit is set; it counts the page cache of the RDB files being written, which the kernel reclaims at the limit, so it sits at the limit whenever a save writes. Peak anonymous: the group's `total_rss` in memory.stat at its highest 20 ms sample, the memory the OOM killer cannot reclaim (no swap). Delay: when the save child started less when its save came due (Redis saves once `now - lastsave > seconds`, so at lastsave + %d s + 1 s, to the second). fork_budget actions: its remedy_applied events (a slot taken for a due save or a child, save held or given back), and when the first came, from the first save's due time. *guardian*: one in-process guardian (instances built as `run` builds them, one runtime_dir in a temp dir for the fork slots) at the shipped defaults: oom_shield and fork_budget on (max_concurrent 1, max_deferral 5m), interval 1 s. Modes interleaved.\n\n",
		fbServers, s.keys, fbValueSize, s.saveAfter, s.keyDelay, fbChildLife(s), fbRoomFactor, mib(r.fork[0].cowOne), s.saveAfter)
	p("| Run | Mode | RSS of the servers | Limit | Peak usage (page cache incl.) | Peak anonymous | OOM kills | Main killed | Children killed | Children at once | Save delays | Children ran | Unsaved | fork_budget actions (first, from due) | save given back |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, x := range r.fork {
		var d, ran []string
		for _, v := range x.delays {
			d = append(d, fmtDur(v))
		}
		for _, v := range x.childRan {
			ran = append(ran, fmtDur(v))
		}
		holds, restored := "-", "-"
		if x.mode == modeGuarded {
			holds, restored = strconv.Itoa(x.holds), met(x.restored)
			if x.firstAct != nil {
				holds += fmt.Sprintf(" (%+d ms)", x.firstAct.Milliseconds())
			}
		}
		p("| %d | %s | %s | %s | %s | %s | %d | %d | %d | %d | %s | %s | %d | %s | %s |\n", i+1, x.mode, mib(x.rss), mib(x.limit), mib(x.peak), mib(x.peakAnon),
			x.oomKills, x.mainKilled, x.childKills, x.maxAtOnce, strings.Join(d, ", "), strings.Join(ran, ", "), x.unsaved, holds, restored)
	}
	p("\n")
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
