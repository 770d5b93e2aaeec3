package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// pause stops the readings of an instance while the soak restarts its Redis.
func (o *observer) pause(i int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inst[i].paused = true
	o.inst[i].gen++
}

// restarted says Redis came back from its command line: the soak's values are the
// originals again and an operator's runtime changes died with the process.
func (o *observer) restarted(i int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	in := o.inst[i]
	in.paused = false
	in.gen++
	o.endEpisode(i, time.Now()) // the operator's runtime yes died with the process
	in.expected, in.opVal, in.revertAt, in.revertSave = clone(in.base), map[string]string{}, time.Time{}, 0
	in.miss = map[string]time.Time{}
}

// operatorSet records an operator's value of a setting, after Redis accepted it.
func (o *observer) operatorSet(i int, setting, value string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inst[i].expected[setting] = value
	o.inst[i].opVal[setting] = value
}

// operatorRevert records that an operator set stop-writes-on-bgsave-error back to
// its original during the guardian's hold, with rdb_last_save_time read before:
// a later successful save ends that episode. (The time of the revert would not
// do: rdb_last_save_time counts seconds, and the guardian's retried save often
// succeeds within the second of the revert; seed 20261206 saw that.)
func (o *observer) operatorRevert(i int, lastSave int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inst[i].revertAt, o.inst[i].revertSave = time.Now(), lastSave
}

// leftover says what is left changed on an instance: settings that differ from
// what the soak expects and ledger entries. standing allows oom_shield's standing
// hold (the guardian runs: it holds oom-score-adj while the instance can fork).
func (o *observer) leftover(ctx context.Context, i int, standing bool) ([]string, error) {
	o.mu.Lock()
	in := o.inst[i]
	expected := clone(in.expected)
	o.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	vals, err := configGet(cctx, in.c)
	if err != nil {
		return nil, err
	}
	ledger, err := readLedger(o.stateDir, in.name)
	if err != nil {
		return nil, err
	}
	var left []string
	for _, s := range watched {
		e, held := named(ledger, s)
		if vals[s] != expected[s] && !(standing && held && e.Remedy == "oom_shield") {
			left = append(left, fmt.Sprintf("%s is %q, not %q", s, vals[s], expected[s]))
		}
	}
	for _, e := range ledger {
		if !(standing && e.Remedy == "oom_shield") {
			left = append(left, fmt.Sprintf("the ledger holds %s %q (%s)", e.Setting, e.Value, e.Remedy))
		}
	}
	sort.Strings(left)
	return left, nil
}

// heldInFile lists the lines of a Redis config file that carry a value only the
// guardian sets: after the guardian stopped, a CONFIG REWRITE during a hold must
// have been put right.
func heldInFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		switch strings.Join(strings.Fields(line), " ") {
		case "stop-writes-on-bgsave-error no", `save ""`, "auto-aof-rewrite-percentage 0":
			out = append(out, line)
		}
	}
	return out, nil
}

// expectedOf is the value the soak expects of a setting now.
func (o *observer) expectedOf(i int, setting string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inst[i].expected[setting]
}
