package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// No build on these machines accepts activedefrag (every Debian package refuses
// it), so the working path (hold, progress, give back) is proven here and by the
// executor-level unit in pkg/remediate; the integration tests prove the refusal.

// fragmented is issue 24's measured pattern (DEBUG POPULATE 500000, 90% deleted,
// 7.0.15) on the healthy instance, with Redis's defrag defaults.
func fragmented(in *Input) {
	i := &in.Snapshot.Redis.Info
	i.RunID = "run1"
	i.UsedMemory, i.UsedMemoryRSS = 34*mib, 309*mib
	i.HasAllocatorFrag, i.AllocatorFragRatio, i.AllocatorFragBytes = true, 6.9, 208*mib
	i.AllocatorAllocated, i.AllocatorActive = 35*mib, 243*mib
	i.MemAllocator = "jemalloc-5.3.0"
	in.Snapshot.Redis.Config[SettingActiveDefrag] = "no"
	in.Snapshot.Redis.Config[SettingDefragCycleMax] = "25"
}

func defragOn(in *Input) { ConfigOf[*DefragConfig](in.Remedies).Enabled = true }

// defragHeld puts the remedy's holds in the ledger and the live config.
func defragHeld(in *Input, cycle bool) {
	in.Held[SettingActiveDefrag] = Held{Setting: SettingActiveDefrag, Original: "no", Value: "yes", Remedy: RemedyDefrag, Reason: IDFragmentationHigh}
	in.Snapshot.Redis.Config[SettingActiveDefrag] = "yes"
	if cycle {
		defragBound(in)
	}
}

// defragBound is the bound held (the operator had raised it to 75).
func defragBound(in *Input) {
	in.Held[SettingDefragCycleMax] = Held{Setting: SettingDefragCycleMax, Original: "75", Value: "25", Remedy: RemedyDefrag, Reason: IDFragmentationHigh}
	in.Snapshot.Redis.Config[SettingDefragCycleMax] = "25"
}

func withDefragState(st *State, ds defragState) {
	st.remedies = map[string]any{RemedyDefrag: ds}
}

func defragOf(st State) defragState { s, _ := st.remedies[RemedyDefrag].(defragState); return s }

func setAD() Decision {
	return Decision{Remedy: RemedyDefrag, Action: ActSet, Setting: SettingActiveDefrag, Value: "yes", Reason: IDFragmentationHigh}
}

func setCM() Decision {
	return Decision{Remedy: RemedyDefrag, Action: ActSet, Setting: SettingDefragCycleMax, Value: "25", Reason: IDFragmentationHigh}
}

func undoAD() Decision {
	return Decision{Remedy: RemedyDefrag, Action: ActUndo, Setting: SettingActiveDefrag, Value: "no", Reason: IDFragmentationHigh}
}

func undoCM() Decision {
	return Decision{Remedy: RemedyDefrag, Action: ActUndo, Setting: SettingDefragCycleMax, Value: "75", Reason: IDFragmentationHigh}
}

const refusedAnswer = "CONFIG SET activedefrag yes: ERR CONFIG SET failed (possibly related to argument 'activedefrag') - Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution"

func TestDecideDefrag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(in *Input, st *State)
		want  []Decision
		// fix and notFix are about fragmentation_high as Evaluate returns it
		// (none wanted when both are empty and noFinding is set).
		fix, notFix []string
		noFinding   bool
		check       func(t *testing.T, st defragState)
	}{
		{name: "off by default: the finding names what works and the remedy, without advising a set",
			setup: func(in *Input, _ *State) { fragmented(in) },
			fix: []string{"works only on builds with Redis's bundled jemalloc", "remedies.defrag",
				"fail over to a replica and restart this one, which would return about 208.0 MiB"},
			notFix: []string{"CONFIG SET activedefrag yes"}},
		{name: "high fragmentation, bound already within max_cycle: hold activedefrag",
			setup: func(in *Input, _ *State) { fragmented(in); defragOn(in) },
			want:  []Decision{setAD()}},
		{name: "high fragmentation, cycle max raised by the operator: the bound first, not activedefrag",
			setup: func(in *Input, _ *State) {
				fragmented(in)
				defragOn(in)
				in.Snapshot.Redis.Config[SettingDefragCycleMax] = "75"
			},
			want: []Decision{setCM()}},
		{name: "the bound held: now activedefrag",
			setup: func(in *Input, _ *State) { fragmented(in); defragOn(in); defragBound(in) },
			want:  []Decision{setAD()}},
		{name: "held while high and making progress: nothing to do, the finding says what is held",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				defragHeld(in, true)
				withDefragState(st, defragState{runID: "run1", markAt: now.Add(-time.Minute), markFrag: 220 * mib})
			},
			fix: []string{"the guardian holds activedefrag yes (active-defrag-cycle-max 25, remedies.defrag)", "return about 208.0 MiB"},
			check: func(t *testing.T, st defragState) {
				if !st.markAt.Equal(now) || st.markFrag != 208*mib {
					t.Errorf("progress mark %s %d, want moved to now and 208 MiB", st.markAt, st.markFrag)
				}
			}},
		{name: "held, fragmentation fell below the thresholds: give back, activedefrag first",
			setup: func(in *Input, _ *State) {
				fragmented(in)
				defragOn(in)
				defragHeld(in, true)
				in.Snapshot.Redis.Info.AllocatorActive = 60 * mib
			},
			want: []Decision{undoAD(), undoCM()}, noFinding: true},
		{name: "held, the guardian stops: give back",
			setup: func(in *Input, _ *State) { fragmented(in); defragOn(in); defragHeld(in, false); in.Stopping = true },
			want:  []Decision{undoAD()}},
		{name: "held, remedy turned off by a reload: give back",
			setup: func(in *Input, _ *State) { fragmented(in); defragHeld(in, true) },
			want:  []Decision{undoAD(), undoCM()}},
		{name: "held, no progress over the window: give back and do not retry for a while",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				defragHeld(in, true)
				in.Snapshot.Redis.Info.ActiveDefragHits = 500
				withDefragState(st, defragState{runID: "run1", markAt: now.Add(-11 * time.Minute), markFrag: 208 * mib, markHits: 500})
			},
			want: []Decision{undoAD(), undoCM()},
			fix:  []string{"active defrag did not return it, so the guardian gave it back and tries again after 2025-06-01T13:00:00Z", "return about 208.0 MiB"},
			check: func(t *testing.T, st defragState) {
				if !st.stalledUntil.Equal(now.Add(time.Hour)) {
					t.Errorf("stalledUntil %s, want an hour on", st.stalledUntil)
				}
			}},
		{name: "held, fragmentation flat but active_defrag_hits rising: progress",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				defragHeld(in, false)
				in.Snapshot.Redis.Info.ActiveDefragHits = 501
				withDefragState(st, defragState{runID: "run1", markAt: now.Add(-11 * time.Minute), markFrag: 208 * mib, markHits: 500})
			}},
		{name: "held, fragmentation fell by more than 1%: progress",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				defragHeld(in, false)
				withDefragState(st, defragState{runID: "run1", markAt: now.Add(-11 * time.Minute), markFrag: 215 * mib})
			}},
		{name: "after a hold without progress: not retried within retry_after",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				withDefragState(st, defragState{runID: "run1", stalledUntil: now.Add(time.Minute), stalled: "active defrag made no progress for 10m0s"})
			},
			fix: []string{"tries again after", "fail over to a replica and restart this one, which would return about 208.0 MiB"}},
		{name: "after retry_after: tried again",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				withDefragState(st, defragState{runID: "run1", stalledUntil: now.Add(-time.Second), stalled: "x"})
			},
			want: []Decision{setAD()}},
		{name: "refused by this build: the bound given back, no retry, the finding says so with the bytes",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				defragBound(in)
				withDefragState(st, defragState{runID: "run1", refused: refusedAnswer})
			},
			want: []Decision{undoCM()},
			fix: []string{"this build refuses activedefrag", "fail over to a replica and restart this server, which would return about 208.0 MiB",
				"asks again only once the server (or the guardian) restarts"},
			notFix: []string{"remedies.defrag asks"}},
		{name: "refused, nothing held: nothing tried",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				withDefragState(st, defragState{runID: "run1", refused: refusedAnswer})
			},
			fix: []string{"this build refuses activedefrag"}},
		{name: "refused, fragmentation_high ignored by the operator: neither finding",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				in.Ignore = map[string]bool{IDFragmentationHigh: true}
				withDefragState(st, defragState{runID: "run1", refused: refusedAnswer})
			},
			noFinding: true},
		{name: "refused on another run: a restart (maybe into another binary) asks again",
			setup: func(in *Input, st *State) {
				fragmented(in)
				defragOn(in)
				withDefragState(st, defragState{runID: "run0", refused: refusedAnswer})
			},
			want: []Decision{setAD()},
			check: func(t *testing.T, st defragState) {
				if st.refused != "" || st.runID != "run1" {
					t.Errorf("state %+v, want the refusal forgotten for run1", st)
				}
			}},
		{name: "the operator's activedefrag yes: never held, never touched",
			setup: func(in *Input, _ *State) {
				fragmented(in)
				defragOn(in)
				in.Snapshot.Redis.Config[SettingActiveDefrag] = "yes"
				in.Snapshot.Redis.Config[SettingDefragCycleMax] = "75"
			},
			fix: []string{"activedefrag is on"}},
		{name: "the operator changed activedefrag during the hold: yielded, the bound given back",
			setup: func(in *Input, _ *State) {
				fragmented(in)
				defragOn(in)
				defragBound(in)
				in.Yielded = []Yield{{Remedy: RemedyDefrag, Setting: SettingActiveDefrag}}
			},
			want: []Decision{undoCM()}},
		{name: "the operator changed the bound during the hold: theirs, activedefrag stays held",
			setup: func(in *Input, _ *State) {
				fragmented(in)
				defragOn(in)
				defragHeld(in, false)
				in.Snapshot.Redis.Config[SettingDefragCycleMax] = "60"
				in.Yielded = []Yield{{Remedy: RemedyDefrag, Setting: SettingDefragCycleMax}}
			}},
		{name: "the operator changed the bound before activedefrag was set: not lowered again",
			setup: func(in *Input, _ *State) {
				fragmented(in)
				defragOn(in)
				in.Snapshot.Redis.Config[SettingDefragCycleMax] = "60"
				in.Yielded = []Yield{{Remedy: RemedyDefrag, Setting: SettingDefragCycleMax}}
			},
			want: []Decision{setAD()}},
		{name: "libc malloc: never tried",
			setup: func(in *Input, _ *State) {
				fragmented(in)
				defragOn(in)
				in.Snapshot.Redis.Info.MemAllocator = "libc"
			}},
		{name: "fragmentation below the floor: nothing",
			setup: func(in *Input, _ *State) {
				fragmented(in)
				defragOn(in)
				in.Snapshot.Redis.Info.AllocatorActive = 60 * mib
			},
			noFinding: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			st := State{}
			tc.setup(&in, &st)
			res, next := Evaluate(in, st)
			if diff := cmp.Diff(tc.want, only(res.Decisions, RemedyDefrag), decisionOpts...); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			f, ok := findFinding(res.Findings, IDFragmentationHigh)
			if ok == tc.noFinding {
				t.Fatalf("fragmentation_high raised %v, want %v: %+v", ok, !tc.noFinding, res.Findings)
			}
			if n := countID(res.Findings, IDFragmentationHigh); n > 1 {
				t.Errorf("fragmentation_high raised %d times: %+v", n, res.Findings)
			}
			contains(t, "fix", f.Fix, tc.fix...)
			notContains(t, "fix", f.Fix, tc.notFix...)
			if tc.check != nil {
				tc.check(t, defragOf(next))
			}
		})
	}
}

func findFinding(fs []Finding, id string) (Finding, bool) {
	for _, f := range fs {
		if f.ID == id {
			return f, true
		}
	}
	return Finding{}, false
}

func countID(fs []Finding, id string) int {
	n := 0
	for _, f := range fs {
		if f.ID == id {
			n++
		}
	}
	return n
}

// TestDefragRefusalLearnt runs the ticks of a refused build through Evaluate
// and Observe, as the daemon does: the bound (the operator had 75), then
// activedefrag, refused with the server's answer; the bound given back at the
// next tick; and no further attempt however long it runs.
func TestDefragRefusalLearnt(t *testing.T) {
	t.Parallel()
	in := decideInput()
	fragmented(&in)
	defragOn(&in)
	in.Snapshot.Redis.Config[SettingDefragCycleMax] = "75"
	var st State
	step := func(in Input, outs func(ds []Decision) []Outcome) []Decision {
		t.Helper()
		res, next := Evaluate(in, st)
		ds := only(res.Decisions, RemedyDefrag)
		st = Observe(next, in.Now, outs(ds))
		return ds
	}
	ok := func(ds []Decision) []Outcome {
		var out []Outcome
		for _, d := range ds {
			out = append(out, Outcome{Decision: d, OK: true})
		}
		return out
	}
	if ds := step(in, ok); !cmp.Equal(ds, []Decision{setCM()}, decisionOpts...) {
		t.Fatalf("tick 1: %+v, want the bound first", ds)
	}
	defragBound(&in)
	in = at(in, now.Add(time.Second))
	ds := step(in, func(ds []Decision) []Outcome {
		var out []Outcome
		for _, d := range ds {
			out = append(out, Outcome{Decision: d, Err: refusedAnswer})
		}
		return out
	})
	if !cmp.Equal(ds, []Decision{setAD()}, decisionOpts...) {
		t.Fatalf("tick 2: %+v, want activedefrag yes", ds)
	}
	if got := defragOf(st).refused; got != refusedAnswer {
		t.Fatalf("refusal learnt as %q", got)
	}
	in = at(in, now.Add(2*time.Second))
	if ds := step(in, ok); !cmp.Equal(ds, []Decision{undoCM()}, decisionOpts...) {
		t.Fatalf("tick 3: %+v, want the bound given back", ds)
	}
	delete(in.Held, SettingDefragCycleMax)
	in.Snapshot.Redis.Config[SettingDefragCycleMax] = "75"
	for i := 3; i < 200; i++ {
		in = at(in, now.Add(time.Duration(i)*time.Minute))
		if ds := step(in, ok); len(ds) != 0 {
			t.Fatalf("tick at +%dm: %+v, want nothing more on a build that refused", i, ds)
		}
	}
	res, _ := Evaluate(in, st)
	f, _ := findFinding(res.Findings, IDFragmentationHigh)
	contains(t, "cause", f.Cause, "CONFIG SET activedefrag yes was refused: "+refusedAnswer)
	contains(t, "fix", f.Fix, "this build refuses activedefrag", "which would return about 208.0 MiB")
}

func TestObserveDefrag(t *testing.T) {
	t.Parallel()
	const noperm = "NOPERM this user has no permissions to run the 'config|set' command"
	const redis6 = "ERR Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc"
	r := defragState{runID: "r"}
	for _, tc := range []struct {
		name string
		from defragState
		o    Outcome
		want defragState
	}{
		{"refused by the build", r, Outcome{Decision: setAD(), Err: refusedAnswer}, defragState{runID: "r", refused: refusedAnswer}},
		{"Redis 6 wording, unwrapped", r, Outcome{Decision: setAD(), Err: redis6}, defragState{runID: "r", refused: redis6}},
		{"ACL: not a lesson about the build", r, Outcome{Decision: setAD(), Err: noperm}, defragState{runID: "r", failed: noperm}},
		{"accepted after a failure", defragState{runID: "r", failed: noperm}, Outcome{Decision: setAD(), OK: true}, r},
		{"the bound's outcome teaches nothing about the build", r, Outcome{Decision: setCM(), Err: refusedAnswer}, r},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := observeDefrag(tc.from, tc.o)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(defragState{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidDefragCycle(t *testing.T) {
	t.Parallel()
	for v, ok := range map[string]bool{"1": true, "25": true, "99": true, "0": false, "100": false, "x": false, "25\nrequirepass": false} {
		if err := validDefragCycle(v); (err == nil) != ok {
			t.Errorf("validDefragCycle(%q) = %v, want ok %v", v, err, ok)
		}
	}
}
