package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func newTestObserver() (*observer, *[]string) {
	var got []string
	o := &observer{report: func(inst, what string) { got = append(got, inst+": "+what) }}
	base := map[string]string{"stop-writes-on-bgsave-error": "yes", "oom-score-adj": "no", "save": "10 1"}
	o.inst = []*instObs{{name: "a", base: base, expected: clone(base), opVal: map[string]string{},
		miss: map[string]time.Time{}, open: map[string]bool{}}}
	for _, s := range watched {
		if _, ok := base[s]; !ok {
			base[s] = ""
			o.inst[0].expected[s] = ""
		}
	}
	return o, &got
}

func reading(o *observer, vals map[string]string, info map[string]string, ledger ...entry) {
	snap, _ := o.begin(0)
	all := clone(snap.expected)
	for k, v := range vals {
		all[k] = v
	}
	o.mu.Lock()
	o.judge(0, snap, all, info, ledger)
	o.mu.Unlock()
}

func TestObserverUnnamedChange(t *testing.T) {
	t.Parallel()
	o, got := newTestObserver()
	held := map[string]string{"stop-writes-on-bgsave-error": "no"}
	reading(o, held, nil, entry{Setting: "stop-writes-on-bgsave-error", Value: "no", Remedy: "stop_writes"})
	reading(o, held, nil) // the entry is gone, the value stays
	if len(*got) != 0 {
		t.Fatalf("violations %v at once, want none within the grace", *got)
	}
	o.inst[0].miss["stop-writes-on-bgsave-error"] = time.Now().Add(-unnamedGrace)
	reading(o, held, nil)
	reading(o, held, nil)
	if len(*got) != 1 || !strings.Contains((*got)[0], `stop-writes-on-bgsave-error is "no" (original "yes") and the ledger does not name it`) {
		t.Errorf("violations %v, want one unnamed stop-writes-on-bgsave-error", *got)
	}
}

func TestObserverOperatorWins(t *testing.T) {
	t.Parallel()
	o, got := newTestObserver()
	o.operatorSet(0, "oom-score-adj", "absolute")
	reading(o, map[string]string{"oom-score-adj": "absolute"}, nil)
	if len(*got) != 0 {
		t.Fatalf("violations %v, want none", *got)
	}
	reading(o, map[string]string{"oom-score-adj": "yes"}, nil, entry{Setting: "oom-score-adj", Value: "relative", Remedy: "oom_shield"})
	if len(*got) != 1 || !strings.Contains((*got)[0], `the operator's oom-score-adj "absolute" was overwritten with "yes"`) {
		t.Errorf("violations %v, want the operator's value overwritten", *got)
	}
	o.pause(0)
	o.restarted(0)
	reading(o, map[string]string{"oom-score-adj": "yes"}, nil, entry{Setting: "oom-score-adj", Value: "relative", Remedy: "oom_shield"})
	if len(*got) != 1 {
		t.Errorf("violations %v after a restart of Redis, want no new one: the operator's runtime value died with it", *got)
	}
}

func TestObserverRevertHoldsUntilASaveSucceeds(t *testing.T) {
	t.Parallel()
	o, got := newTestObserver()
	const at = 1000
	o.operatorRevert(0, at)
	held := map[string]string{"stop-writes-on-bgsave-error": "no"}
	ledger := entry{Setting: "stop-writes-on-bgsave-error", Value: "no", Remedy: "stop_writes"}
	reading(o, held, map[string]string{"rdb_last_save_time": itoa(at)}, ledger)
	if len(*got) != 1 || !strings.Contains((*got)[0], "set to no again after the operator set it back to yes") {
		t.Fatalf("violations %v, want the guardian's retake of the episode flagged", *got)
	}
	o2, got2 := newTestObserver()
	o2.operatorRevert(0, at)
	reading(o2, held, map[string]string{"rdb_last_save_time": itoa(at + 1)}, ledger)
	if len(*got2) != 0 || !o2.inst[0].opSaved {
		t.Errorf("violations %v, opSaved %v: a save succeeded since, the guardian may lift again", *got2, o2.inst[0].opSaved)
	}
}

// TestObserverEpisodeEndsAfterTheGuardianLearnt: the guardian learns of the
// operator's revert at its next reading of the setting (its ledger entry goes
// then), and its episode ends at a save after that second. A save between the
// revert and that moment lets it lift again, but the MISCONF of a new fault in
// between is still the operator's (the 15-minute soak, seed 20261208: a save
// 1.4 s after the revert, in the second the guardian yielded, then a killed
// child charged to the fault).
func TestObserverEpisodeEndsAfterTheGuardianLearnt(t *testing.T) {
	t.Parallel()
	o, got := newTestObserver()
	const at = 1000
	o.operatorRevert(0, at)
	ledger := entry{Setting: "stop-writes-on-bgsave-error", Value: "no", Remedy: "stop_writes"}
	yes := map[string]string{"stop-writes-on-bgsave-error": "yes"}
	reading(o, yes, map[string]string{"rdb_last_save_time": itoa(at)}, ledger)
	now := time.Now().Unix()
	// The entry is gone (the guardian yielded), and a save succeeded in the same
	// second: still the operator's episode.
	reading(o, yes, map[string]string{"rdb_last_save_time": itoa(now)})
	if eps := o.Episodes(); len(eps) != 0 || !o.inst[0].opSaved {
		t.Fatalf("episodes %+v, opSaved %v: want the episode on, the operator's save seen", eps, o.inst[0].opSaved)
	}
	reading(o, yes, map[string]string{"rdb_last_save_time": itoa(now + 1)})
	if eps := o.Episodes(); len(eps) != 1 || len(*got) != 0 {
		t.Fatalf("episodes %+v, violations %v: want the episode ended by the save after the guardian learnt", eps, *got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
