package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// pollEvery is how often the observer reads each instance.
	pollEvery = 300 * time.Millisecond
	// unnamedGrace is how long a changed setting may go unnamed in the ledger
	// before it is a violation: two readings of the ledger around one CONFIG GET
	// can still miss an entry made and removed between them.
	unnamedGrace = 2 * time.Second
)

// entry is what the observer reads of a ledger entry, parsed on its own (not with
// the guardian's code: the observer trusts nothing of the guardian's).
type entry struct {
	Setting string `json:"setting"`
	Value   string `json:"value"`
	Remedy  string `json:"remedy"`
	Applied bool   `json:"applied"`
}

// readLedger reads state_dir/<name>.ledger.json; no file is an empty ledger.
func readLedger(stateDir, name string) ([]entry, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, name+".ledger.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger of %s: %w", name, err)
	}
	var f struct {
		Changes []entry `json:"changes"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse ledger of %s: %w", name, err)
	}
	return f.Changes, nil
}

func named(l []entry, setting string) (entry, bool) {
	for _, e := range l {
		if e.Setting == setting {
			return e, true
		}
	}
	return entry{}, false
}

// instObs is what the observer expects of one instance.
type instObs struct {
	name       string
	c          *redis.Client
	base       map[string]string // the values the soak configured
	expected   map[string]string // base, with an operator's changes
	opVal      map[string]string // an operator's values, never to be overwritten
	revertAt   time.Time         // the operator set stop-writes back to yes during a hold
	revertSave int64             // rdb_last_save_time before that revert
	opSaved    bool              // a save succeeded after the revert: the guardian may lift again
	// yieldMark is the second the observer first saw the guardian's entry gone
	// after the revert (or rdb_last_save_time then, if later): the guardian
	// learns of the operator's change at its next reading of the setting, and
	// its episode ends at a save after the second it learnt it (README). 0
	// until seen.
	yieldMark int64
	gen       int // restarts of Redis: a reading across one is dropped
	paused    bool
	miss      map[string]time.Time // changed and unnamed since
	open      map[string]bool      // violations reported and not cleared since
}

// observer checks the invariants continuously from INFO, CONFIG GET and the
// ledger files; it never asks the guardian or reads its log.
type observer struct {
	stateDir string
	report   func(inst, what string)

	mu   sync.Mutex
	inst []*instObs
	// episodes are the operators' reverts whose episode the observer saw end (a
	// save succeeded after the revert, or Redis restarted): the guardian leaves
	// a failed save's MISCONF to the operator until then, whatever new fault
	// fails the saves meanwhile.
	episodes []episode
}

// episode is one operator's revert of stop-writes-on-bgsave-error, from the
// revert to the moment its episode ended.
type episode struct {
	inst       int
	start, end time.Time
}

// endEpisode records the end of instance i's revert episode; o.mu is held.
func (o *observer) endEpisode(i int, at time.Time) {
	in := o.inst[i]
	if in.revertAt.IsZero() {
		return
	}
	o.episodes = append(o.episodes, episode{inst: i, start: in.revertAt, end: at})
	in.revertAt, in.opSaved, in.yieldMark = time.Time{}, false, 0
}

// Episodes are the revert episodes that ended.
func (o *observer) Episodes() []episode {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.episodes)
}

// snapshot is what the observer expects of an instance at the start of a reading.
type snapshot struct {
	gen        int
	expected   map[string]string
	opVal      map[string]string
	revertAt   time.Time
	revertSave int64
}

func (o *observer) begin(i int) (snapshot, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	in := o.inst[i]
	if in.paused {
		return snapshot{}, false
	}
	return snapshot{gen: in.gen, expected: clone(in.expected), opVal: clone(in.opVal), revertAt: in.revertAt, revertSave: in.revertSave}, true
}

// run polls every instance until ctx ends.
func (o *observer) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range o.inst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(pollEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				o.check(ctx, i)
			}
		}()
	}
	wg.Wait()
}

// check reads one instance once: the ledger, CONFIG GET and INFO, the ledger again.
func (o *observer) check(ctx context.Context, i int) {
	snap, ok := o.begin(i)
	if !ok {
		return
	}
	in := o.inst[i]
	l1, err1 := readLedger(o.stateDir, in.name)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	vals, err := configGet(cctx, in.c)
	var info map[string]string
	if err == nil {
		info, err = infoFields(cctx, in.c)
	}
	cancel()
	l2, err2 := readLedger(o.stateDir, in.name)
	if err != nil {
		return // Redis down or busy: the writer's counts tell that story
	}
	if err := errors.Join(err1, err2); err != nil {
		o.violate(i, "ledger", err.Error())
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if in.gen != snap.gen || in.paused {
		return
	}
	o.judge(i, snap, vals, info, append(l1, l2...))
}

// judge applies the invariants to one reading; o.mu is held.
func (o *observer) judge(i int, snap snapshot, vals, info map[string]string, ledger []entry) {
	in := o.inst[i]
	now := time.Now()
	for _, s := range watched {
		if _, ok := named(ledger, s); vals[s] == snap.expected[s] || ok {
			delete(in.miss, s)
			in.open["unnamed:"+s] = false
			continue
		}
		if in.miss[s].IsZero() {
			in.miss[s] = now
		} else if now.Sub(in.miss[s]) >= unnamedGrace {
			o.violateLocked(i, "unnamed:"+s, fmt.Sprintf("%s is %q (original %q) and the ledger does not name it (for %s)",
				s, vals[s], snap.expected[s], now.Sub(in.miss[s]).Round(time.Millisecond)))
		}
	}
	for s, v := range snap.opVal {
		if vals[s] != v {
			o.violateLocked(i, "operator:"+s, fmt.Sprintf("the operator's %s %q was overwritten with %q", s, v, vals[s]))
		}
	}
	if !snap.revertAt.IsZero() && in.revertAt.Equal(snap.revertAt) {
		last, _ := strconv.ParseInt(info["rdb_last_save_time"], 10, 64)
		if last > snap.revertSave {
			in.opSaved = true // a save after the operator's change: the guardian may lift again
		}
		if _, held := named(ledger, "stop-writes-on-bgsave-error"); !held && in.yieldMark == 0 {
			in.yieldMark = max(last, now.Unix())
		}
		switch {
		case in.yieldMark != 0 && last > in.yieldMark:
			o.endEpisode(i, now) // the guardian's episode is over too
		case vals["stop-writes-on-bgsave-error"] == "no" && !in.opSaved:
			o.violateLocked(i, "revert", fmt.Sprintf("stop-writes-on-bgsave-error set to no again after the operator set it back to yes at %s, with no save succeeded since",
				snap.revertAt.Format("15:04:05.000")))
		}
	}
}

func (o *observer) violate(i int, key, what string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.violateLocked(i, key, what)
}

// violateLocked reports a violation once until it clears.
func (o *observer) violateLocked(i int, key, what string) {
	in := o.inst[i]
	if in.open[key] {
		return
	}
	in.open[key] = true
	o.report(in.name, what)
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
