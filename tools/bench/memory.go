package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// The faults of figure 10.
const (
	memRunaway = "runaway MONITOR"
	memGrowing = "growing dataset"
)

// The growing dataset's writer: growPerSecond keys (5 every 20 ms) of about
// growKeyBytes of used_memory each (a value of 1000 bytes and its key).
const (
	growPerSecond = 250
	growKeyBytes  = 1070
)

// remedyOOMRelief is the opt-in remedy the growing dataset needs (issue 24); it is
// looked up by name in policy.Registry, so the step runs before and after it lands.
const remedyOOMRelief = "oom_relief"

// memoryRun is one run of figure 10: writes accepted and rejected with OOM.
type memoryRun struct {
	fault, mode  string
	window       time.Duration
	ok, rejected int64
	// firstReject and lastReject are offsets from the writer's start (0: none).
	firstReject, lastReject time.Duration
	actions                 int    // the guardian's remedy_applied events of the fault's remedy
	note                    string // why there is no run (the remedy is not built)
}

// memoryKey names one cell of figure 10.
type memoryKey struct{ fault, mode string }

// measureMemory interleaves the modes over reps for each fault.
func measureMemory(t *benchT, p params, verbose bool) map[memoryKey][]memoryRun {
	out := map[memoryKey][]memoryRun{}
	relief := registered(remedyOOMRelief)
	for _, fault := range []string{memRunaway, memGrowing} {
		for rep := range p.memoryReps {
			modes := []string{modeAlone, modeGuarded}
			if rep%2 == 1 {
				modes = []string{modeGuarded, modeAlone}
			}
			for _, mode := range modes {
				k := memoryKey{fault, mode}
				if fault == memGrowing && mode == modeGuarded && !relief {
					if rep == 0 {
						out[k] = append(out[k], memoryRun{fault: fault, mode: mode, note: remedyOOMRelief + " not built"})
					}
					continue
				}
				var r memoryRun
				err := scenario(fmt.Sprintf("%s / %s #%d", fault, mode, rep+1), verbose, func(t *benchT) {
					if fault == memRunaway {
						r = runawayRun(t, mode, p.runawayWindow)
					} else {
						r = growingRun(t, mode, p.memoryWindow)
					}
				})
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: %v\n", err)
					t.Errorf("%v", err)
					continue
				}
				out[k] = append(out[k], r)
			}
		}
	}
	return out
}

// registered: policy.Registry has a remedy of that name.
func registered(name string) bool {
	for _, r := range policy.Registry {
		if r.Name() == name {
			return true
		}
	}
	return false
}

// enableOnly is a policy.Params that sets `enabled: true` and leaves every other
// key at its default, as a config file with only that key would.
type enableOnly struct{}

func (enableOnly) Bool(key string, dst *bool) {
	if key == "enabled" {
		*dst = true
	}
}
func (enableOnly) Int(string, *int, int)                          {}
func (enableOnly) Positive(string, *float64)                      {}
func (enableOnly) Duration(string, *time.Duration, time.Duration) {}
func (enableOnly) Size(string, *int64)                            {}
func (enableOnly) Problem(string, string, ...any)                 {}

// runawayRun: maxmemory 200mb (noeviction), a MONITOR that never reads
// (testredis StuckMonitor) and a writer overwriting 64 keys of 16 KiB: the
// dataset stays small while the MONITOR's output buffer fills maxmemory. The
// guardian runs its shipped defaults (client_guard on).
func runawayRun(t *benchT, mode string, window time.Duration) memoryRun {
	srv := testredis.Start(t, testredis.Options{NoSave: true, Args: []string{"--maxmemory", "200mb", "--maxmemory-policy", "noeviction"}})
	var g *inproc
	if mode == modeGuarded {
		g = startInproc(t, srv, inprocOpts{})
		g.waitTicks(t, 2)
	}
	srv.StuckMonitor(t)
	val := strings.Repeat("x", 16<<10)
	r := memWrite(t, srv, window, 2*time.Millisecond, func(ctx context.Context, p redis.Pipeliner, i int) {
		for j := range 32 {
			p.Set(ctx, "big:"+strconv.Itoa((i*32+j)%64), val, 0)
		}
	})
	r.fault, r.mode = memRunaway, mode
	if g != nil {
		r.actions = countEvents(g, events.RemedyApplied, policy.RemedyClientGuard)
	}
	return r
}

// growingRun: maxmemory 20mb (noeviction), filled to half the window's growth
// below it, and a writer adding keys of 1000 bytes at 250 a second: the dataset
// grows past maxmemory halfway through the window and ends within oom_relief's
// default max_raise (25%). The guardian runs its shipped defaults with
// oom_relief enabled (it is opt-in).
func growingRun(t *benchT, mode string, window time.Duration) memoryRun {
	srv := testredis.Start(t, testredis.Options{NoSave: true, Args: []string{"--maxmemory", "20mb", "--maxmemory-policy", "noeviction"}})
	growth := int64(window.Seconds() * growPerSecond * growKeyBytes)
	for used := int64(0); used < 20<<20-growth/2; {
		srv.Fill(t, 250, 1000)
		used, _ = strconv.ParseInt(srv.Info(t)["used_memory"], 10, 64)
	}
	var g *inproc
	if mode == modeGuarded {
		g = startInproc(t, srv, inprocOpts{remedies: func(rs policy.Remedies) {
			cfg, ok := rs[remedyOOMRelief]
			if !ok {
				t.Fatalf("%s is registered but not in the instance's remedies", remedyOOMRelief)
			}
			cfg.Configure(enableOnly{})
			if !cfg.RateLimits().Enabled {
				t.Fatalf("%s: enabled: true did not enable it", remedyOOMRelief)
			}
		}})
		g.waitTicks(t, 2)
	}
	val := strings.Repeat("y", 1000)
	r := memWrite(t, srv, window, 20*time.Millisecond, func(ctx context.Context, p redis.Pipeliner, i int) {
		for j := range 5 {
			p.Set(ctx, "grow:"+strconv.Itoa(i*5+j), val, 0)
		}
	})
	r.fault, r.mode = memGrowing, mode
	if g != nil {
		r.actions = countEvents(g, events.RemedyApplied, remedyOOMRelief)
	}
	t.Logf("growing dataset / %s: used_memory %s at the end", mode, srv.Info(t)["used_memory_human"])
	return r
}

// memWrite runs batch i = 0, 1, ... every pace for window, each in one pipeline,
// and counts the writes accepted and rejected with OOM.
func memWrite(t *benchT, srv *testredis.Server, window, pace time.Duration, batch func(context.Context, redis.Pipeliner, int)) memoryRun {
	c := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	r := memoryRun{window: window}
	start := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error { batch(ctx, p, i); return nil })
		at := time.Since(start)
		for _, cmd := range cmds {
			switch err := cmd.Err(); {
			case err == nil:
				r.ok++
			case strings.HasPrefix(err.Error(), "OOM"):
				r.rejected++
				if r.firstReject == 0 {
					r.firstReject = at
				}
				r.lastReject = at
			}
		}
		time.Sleep(pace)
	}
	return r
}

// memorySummary adds figure 10's rows to the summary.
func (r *report) memorySummary(p func(string, ...any)) {
	for _, fault := range []string{memRunaway, memGrowing} {
		a, g := r.memory[memoryKey{fault, modeAlone}], r.memory[memoryKey{fault, modeGuarded}]
		if len(a) == 0 || len(g) == 0 {
			continue
		}
		ra := medianRejected(a)
		if g[0].note != "" {
			p("| 10 | Writes rejected, %s, with the guardian (Redis alone: median %.0f) | 0 while the host has room | %s | - |\n", fault, ra, g[0].note)
			continue
		}
		rg, worst := medianRejected(g), int64(0)
		for _, x := range g {
			worst = max(worst, x.rejected)
		}
		target, ok := "fewer than Redis alone", rg < ra
		if fault == memGrowing {
			target, ok = "0 while the host has room", worst == 0
		}
		p("| 10 | Writes rejected, %s, with the guardian (n=%d, median; worst %d; Redis alone: median %.0f) | %s | %.0f | %s |\n", fault, len(g), worst, ra, target, rg, met(ok))
	}
}

func medianRejected(runs []memoryRun) float64 {
	var v []float64
	for _, x := range runs {
		v = append(v, float64(x.rejected))
	}
	return median(v)
}

// memorySection is figure 10.
func (r *report) memorySection(p func(string, ...any)) {
	if len(r.memory) == 0 {
		return
	}
	p("## 10. Writes rejected under memory pressure\n\n")
	p("Method (issue 24): a fresh redis-server per run, writes counted as accepted or rejected with OOM. *%s* (a %s window): `maxmemory 200mb` noeviction, a MONITOR that never reads (testredis `StuckMonitor`: a socket with a 4 KiB receive buffer), a writer overwriting 64 keys of 16 KiB in pipelines of 32 every 2 ms: the dataset stays tiny while the MONITOR's output buffer fills maxmemory; the guardian's remedy is client_guard (on by default). *%s* (a %s window): `maxmemory 20mb` noeviction, filled with keys of 1000 bytes to half the window's growth below it, and a writer adding keys of 1000 bytes in pipelines of 5 every 20 ms (about 0.27 MB/s): the dataset grows past maxmemory halfway through the window and ends within oom_relief's default max_raise (25%%); the guardian's remedy is the opt-in %s, enabled (`remedies.%s.enabled: true`, its other keys at their defaults) when this build has it, looked up by name in the policy registry. *guardian*: one in-process instance at the shipped defaults (interval 1 s, info_refresh 10 s). Modes interleaved. Rejections span: offsets of the first and last rejected write from the writer's start.\n\n",
		memRunaway, r.params.runawayWindow, memGrowing, r.params.memoryWindow, remedyOOMRelief, remedyOOMRelief)
	p("| Fault | Mode | Run | Writes accepted | Rejected (OOM) | Rejections span | Remedy actions |\n|---|---|---|---|---|---|---|\n")
	for _, fault := range []string{memRunaway, memGrowing} {
		for _, mode := range []string{modeAlone, modeGuarded} {
			for i, x := range r.memory[memoryKey{fault, mode}] {
				if x.note != "" {
					p("| %s | %s | - | %s | | | |\n", fault, mode, x.note)
					continue
				}
				span, actions := "-", "-"
				if x.rejected > 0 {
					span = fmt.Sprintf("%s to %s", fmtDur(x.firstReject), fmtDur(x.lastReject))
				}
				if mode == modeGuarded {
					actions = strconv.Itoa(x.actions)
				}
				p("| %s | %s | %d | %d | %d | %s | %s |\n", fault, mode, i+1, x.ok, x.rejected, span, actions)
			}
		}
	}
	p("\n")
}
