package main

import (
	"strings"
	"testing"
	"time"
)

func TestAttribute(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rec := func(k kind, inst int, from, to float64) *faultRec {
		return &faultRec{step: step{Kind: k, Inst: inst}, start: at(from), end: at(to)}
	}
	rej := func(inst int, s float64, n int, class string) []rejection {
		var out []rejection
		for j := range n {
			out = append(out, rejection{inst: inst, sent: at(s + float64(j)*0.002), class: class})
		}
		return out
	}
	fork := rec(kForkFail, 0, 10, 20)
	kill := rec(kGuardianKill, -1, 30, 35)
	mon := rec(kMonitor, 1, 40, 80)
	recs := []*faultRec{fork, kill, mon}
	var rejected []rejection
	rejected = append(rejected, rej(0, 10.5, 40, "MISCONF")...)     // within fork_fail's 50
	rejected = append(rejected, rej(0, 31, 400, "MISCONF")...)      // the guardian is down: free
	rejected = append(rejected, rej(1, 50, 300, "OOM")...)          // the MONITOR's free 30 s
	rejected = append(rejected, rej(1, 71, 60, "OOM")...)           // past it: over 50
	rejected = append(rejected, rej(0, 100, 3, "MISCONF")...)       // no fault at all
	rejected = append(rejected, rej(0, 12, 2, "OOM")...)            // fork_fail explains no OOM
	rejected = append(rejected, rej(0, 200, 500, "unavailable")...) // no reply: not a rejection
	ws, vs := attribute(recs, nil, rejected, []string{"a", "b"})
	got := map[kind][2]int{}
	for _, w := range ws {
		got[w.rec.step.Kind] = [2]int{w.charged, w.overBudget}
	}
	want := map[kind][2]int{kForkFail: {40, 40}, kGuardianKill: {400, 0}, kMonitor: {360, 60}}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s charged, over = %v, want %v", k, got[k], v)
		}
	}
	var msgs []string
	for _, v := range vs {
		msgs = append(msgs, v.inst+": "+v.what)
	}
	all := strings.Join(msgs, "\n")
	if len(vs) != 2 || !strings.Contains(all, "a: 5 writes rejected (first: OOM) with no fault active") ||
		!strings.Contains(all, "b: monitor cost 60 writes beyond its free time, budget 50") {
		t.Errorf("violations:\n%s\nwant the 3 unexplained writes on a and the monitor over budget on b", all)
	}
}

func TestRevertWindowRunsToTheOverlappingFaultsEnd(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fork := &faultRec{step: step{Kind: kForkFail, Inst: 0}, start: t0, end: t0.Add(60 * time.Second)}
	op := &faultRec{step: step{Kind: kOperatorSet, Inst: 0}, start: t0.Add(5 * time.Second), end: t0.Add(5 * time.Second), revert: true}
	var rejected []rejection
	for j := range 1000 { // MISCONF from the revert until the fault ends, and 20 s after
		rejected = append(rejected, rejection{inst: 0, sent: t0.Add(6*time.Second + time.Duration(j)*70*time.Millisecond), class: "MISCONF"})
	}
	if _, vs := attribute([]*faultRec{fork, op}, nil, rejected, []string{"a"}); len(vs) != 0 {
		t.Errorf("violations %+v, want none: the operator won until the fault's end", vs)
	}
}

// TestRevertWindowRunsToTheEpisodeEnd: the operator's episode lasts until a save
// succeeds after the revert, whichever faults fail the saves meanwhile: a new
// fault's MISCONF inside it is the operator's, and one after its end is the
// fault's again (the hour's soak, seed 20261208, charged such MISCONF to the
// new faults: 9 violations).
func TestRevertWindowRunsToTheEpisodeEnd(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := &faultRec{step: step{Kind: kForkFail, Inst: 0}, start: t0, end: t0.Add(10 * time.Second)}
	op := &faultRec{step: step{Kind: kOperatorSet, Inst: 0}, start: t0.Add(5 * time.Second), end: t0.Add(5 * time.Second), revert: true}
	second := &faultRec{step: step{Kind: kDiskFull, Inst: 0}, start: t0.Add(40 * time.Second), end: t0.Add(50 * time.Second)}
	third := &faultRec{step: step{Kind: kKillChild, Inst: 0}, start: t0.Add(70 * time.Second), end: t0.Add(71 * time.Second)}
	eps := []episode{{inst: 0, start: t0.Add(5*time.Second + time.Millisecond), end: t0.Add(60 * time.Second)}}
	var rejected []rejection
	for j := range 500 { // MISCONF through the second fault, inside the episode
		rejected = append(rejected, rejection{inst: 0, sent: t0.Add(40*time.Second + time.Duration(j)*20*time.Millisecond), class: "MISCONF"})
	}
	recs := []*faultRec{first, op, second, third}
	if _, vs := attribute(recs, eps, rejected, []string{"a"}); len(vs) != 0 {
		t.Errorf("violations %+v, want none: the operator's episode ran until 60 s", vs)
	}
	// Without the episode's end (the attribution before), the second fault was
	// charged with the operator's MISCONF.
	if _, vs := attribute(recs, nil, rejected, []string{"a"}); len(vs) != 1 || !strings.Contains(vs[0].what, "disk_full cost") {
		t.Errorf("without the episode: violations %+v, want disk_full over its budget", vs)
	}
	// After the episode's end a new fault's MISCONF is the guardian's to lift.
	for j := range 500 {
		rejected = append(rejected, rejection{inst: 0, sent: t0.Add(70*time.Second + time.Duration(j)*2*time.Millisecond), class: "MISCONF"})
	}
	if _, vs := attribute(recs, eps, rejected, []string{"a"}); len(vs) != 1 || !strings.Contains(vs[0].what, "kill_child cost") || !strings.Contains(vs[0].what, "(500 in all)") {
		t.Errorf("violations %+v, want kill_child over its budget after the episode ended", vs)
	}
}
