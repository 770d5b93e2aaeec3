package remediate

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// defragRig runs the defrag remedy the way the daemon does (reconcile, Evaluate,
// Execute, Observe) against a fake server whose allocator numbers the test sets.
// No build on these machines accepts activedefrag, so this is where the path of
// a build that does (upstream's bundled jemalloc) is proven end to end through
// the executor and its ledger; the refusal is proven on every real build in
// internal/daemon.
type defragRig struct {
	t      *testing.T
	srv    *configServer
	e      *Executor
	rs     policy.Remedies
	st     policy.State
	now    time.Time
	frag   int64 // allocator_active - allocator_allocated
	hits   int64
	result policy.Result
}

func newDefragRig(t *testing.T, refuse bool) *defragRig {
	t.Helper()
	srv := newConfigServer(map[string]string{policy.SettingActiveDefrag: "no", policy.SettingDefragCycleMax: "75", "save": ""})
	if refuse {
		// Debian's redis 7.0.15, word for word.
		srv.onSet = func(setting, value string) error {
			if setting == policy.SettingActiveDefrag && value == "yes" {
				return errors.New("ERR CONFIG SET failed (possibly related to argument 'activedefrag') - Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution")
			}
			return nil
		}
	}
	e, _ := newExecutor(t, srv, NewMemLedger())
	rs := policy.DefaultRemedies()
	policy.ConfigOf[*policy.DefragConfig](rs).Enabled = true
	return &defragRig{t: t, srv: srv, e: e, rs: rs, now: when, frag: 208 << 20}
}

// tick is one loop pass, a minute after the previous one; it returns the
// remedy's decisions and their outcomes.
func (r *defragRig) tick(stopping bool) ([]policy.Decision, []policy.Outcome) {
	r.t.Helper()
	r.now = r.now.Add(time.Minute)
	info := monitor.Info{RunID: "run1", Role: "master", UsedMemory: 34 << 20, UsedMemoryRSS: 309 << 20,
		HasAllocatorFrag: true, AllocatorAllocated: 35 << 20, AllocatorActive: 35<<20 + r.frag, AllocatorFragBytes: r.frag,
		MemAllocator: "jemalloc-5.3.0", ActiveDefragHits: r.hits}
	reading := monitor.RedisReading{Info: info, InfoTime: r.now, InfoFull: true, Config: maps.Clone(monitor.RedisConfig(r.srv.config)), ConfigTime: r.now}
	yielded := r.e.Reconcile(reading, true)
	res, st := policy.Evaluate(policy.Input{Snapshot: monitor.Snapshot{Time: r.now, Redis: reading}, Held: r.e.Held(), Remedies: r.rs,
		Thresholds: policy.DefaultThresholds(), Yielded: yielded, Now: r.now, Stopping: stopping}, r.st)
	var ds []policy.Decision
	var outs []policy.Outcome
	for _, d := range res.Decisions {
		o := r.e.Execute(context.Background(), d)
		outs = append(outs, o)
		if d.Remedy == policy.RemedyDefrag {
			ds = append(ds, d)
		}
	}
	r.st = policy.Observe(st, r.now, outs)
	r.result = res
	return ds, outs
}

// steps renders decisions as "set activedefrag yes" for comparison.
func steps(ds []policy.Decision) string {
	var out []string
	for _, d := range ds {
		out = append(out, string(d.Action)+" "+d.Setting+" "+d.Value)
	}
	return strings.Join(out, ", ")
}

func (r *defragRig) want(got []policy.Decision, want string) {
	r.t.Helper()
	if s := steps(got); s != want {
		r.t.Fatalf("at %s: decisions %q, want %q", r.now.Format("15:04"), s, want)
	}
}

func (r *defragRig) live(want map[string]string) {
	r.t.Helper()
	for k, v := range want {
		if r.srv.config[k] != v {
			r.t.Errorf("%s is %q, want %q", k, r.srv.config[k], v)
		}
	}
}

func (r *defragRig) fix() string {
	for _, f := range r.result.Findings {
		if f.ID == policy.IDFragmentationHigh {
			return f.Fix
		}
	}
	return ""
}

// TestDefragWorkingBuild: on a build that accepts activedefrag, the bound goes
// first (the operator had 75), then activedefrag, both in the ledger with their
// originals; while fragmentation falls the hold stays; once it is below the
// thresholds both are given back and the ledger is empty.
func TestDefragWorkingBuild(t *testing.T) {
	t.Parallel()
	r := newDefragRig(t, false)
	ds, _ := r.tick(false)
	r.want(ds, "set active-defrag-cycle-max 25")
	ds, _ = r.tick(false)
	r.want(ds, "set activedefrag yes")
	r.live(map[string]string{policy.SettingActiveDefrag: "yes", policy.SettingDefragCycleMax: "25"})
	if held := r.e.Held(); held[policy.SettingActiveDefrag].Original != "no" || held[policy.SettingDefragCycleMax].Original != "75" {
		t.Fatalf("ledger %+v, want both held with their originals", held)
	}
	for i := 0; i < 15; i++ { // fifteen minutes of defrag returning 8 MiB a minute
		r.frag -= 8 << 20
		r.hits += 1000
		ds, _ = r.tick(false)
		r.want(ds, "")
		if !strings.Contains(r.fix(), "the guardian holds activedefrag yes (active-defrag-cycle-max 25, remedies.defrag)") {
			t.Fatalf("fix while held: %s", r.fix())
		}
	}
	r.frag = 40 << 20 // below the 64 MiB floor
	ds, _ = r.tick(false)
	r.want(ds, "undo activedefrag no, undo active-defrag-cycle-max 75")
	r.live(map[string]string{policy.SettingActiveDefrag: "no", policy.SettingDefragCycleMax: "75"})
	if ch := r.e.Changes(); len(ch) != 0 {
		t.Errorf("ledger holds %+v after the give-back", ch)
	}
}

// TestDefragNoProgress: held, but neither fragmentation nor active_defrag_hits
// move for the window (10 minutes): both given back, and not taken again within
// retry_after (an hour), then taken again.
func TestDefragNoProgress(t *testing.T) {
	t.Parallel()
	r := newDefragRig(t, false)
	r.srv.config[policy.SettingDefragCycleMax] = "25" // Redis's default: no bound to set
	ds, _ := r.tick(false)
	r.want(ds, "set activedefrag yes")
	var gaveBack int
	for i := 0; i < 12 && gaveBack == 0; i++ {
		ds, _ = r.tick(false)
		if len(ds) > 0 {
			r.want(ds, "undo activedefrag no")
			gaveBack = i + 1
		}
	}
	if gaveBack < 10 {
		t.Fatalf("given back after %d minutes, want after the 10 minute window (0: never)", gaveBack)
	}
	if len(r.e.Changes()) != 0 || !strings.Contains(r.fix(), "tries again after") {
		t.Fatalf("ledger %+v, fix %q", r.e.Changes(), r.fix())
	}
	for i := 0; i < 55; i++ {
		ds, _ = r.tick(false)
		r.want(ds, "")
	}
	for i := 0; i < 10 && len(ds) == 0; i++ {
		ds, _ = r.tick(false)
	}
	r.want(ds, "set activedefrag yes")
	ds, _ = r.tick(true)
	r.want(ds, "undo activedefrag no")
	if len(r.e.Changes()) != 0 {
		t.Errorf("ledger holds %+v after the guardian stopped", r.e.Changes())
	}
}

// TestDefragRefusingBuild: the refusal reaches the policy through the executor's
// outcome: learnt at the first attempt, the bound given back at the next tick,
// never asked again, and the finding gives the failover fix with the bytes.
func TestDefragRefusingBuild(t *testing.T) {
	t.Parallel()
	r := newDefragRig(t, true)
	ds, _ := r.tick(false)
	r.want(ds, "set active-defrag-cycle-max 25")
	ds, outs := r.tick(false)
	r.want(ds, "set activedefrag yes")
	if outs[0].OK || !policy.DefragRefused(outs[0].Err) {
		t.Fatalf("outcome %+v, want the build's refusal", outs[0])
	}
	if _, held := r.e.Held()[policy.SettingActiveDefrag]; held {
		t.Fatal("a refused activedefrag left in the ledger")
	}
	ds, _ = r.tick(false)
	r.want(ds, "undo active-defrag-cycle-max 75")
	for i := 0; i < 120; i++ {
		ds, _ = r.tick(false)
		r.want(ds, "")
	}
	r.live(map[string]string{policy.SettingActiveDefrag: "no", policy.SettingDefragCycleMax: "75"})
	if ch := r.e.Changes(); len(ch) != 0 {
		t.Errorf("ledger holds %+v", ch)
	}
	for _, want := range []string{"this build refuses activedefrag", "fail over to a replica and restart this server, which would return about 208.0 MiB"} {
		if !strings.Contains(r.fix(), want) {
			t.Errorf("fix lacks %q: %s", want, r.fix())
		}
	}
}
