package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

func allKinds() map[kind]bool {
	m := map[kind]bool{}
	for _, k := range kinds {
		m[k.kind] = true
	}
	return m
}

func TestScheduleIsTheSeeds(t *testing.T) {
	t.Parallel()
	a := schedule(42, 10*time.Minute, 4, allKinds())
	if diff := cmp.Diff(a, schedule(42, 10*time.Minute, 4, allKinds())); diff != "" {
		t.Errorf("same seed, different schedules (-first +second):\n%s", diff)
	}
	if cmp.Equal(a, schedule(43, 10*time.Minute, 4, allKinds())) {
		t.Error("seeds 42 and 43 gave the same schedule")
	}
	if len(a) < 50 {
		t.Errorf("10 minutes gave %d faults, want at least 50", len(a))
	}
}

func TestScheduleRules(t *testing.T) {
	t.Parallel()
	d := 30 * time.Minute
	steps := schedule(7, d, 4, allKinds())
	seen := map[kind]int{}
	end := map[string]time.Duration{}
	for _, s := range steps {
		seen[s.Kind]++
		if s.At+s.Dur > d {
			t.Errorf("%+v ends after the run's %s", s, d)
		}
		if s.Kind == kReplica && s.Inst == 0 {
			t.Errorf("%+v: instance 0 is the master the replicas follow", s)
		}
		if (s.Kind == kGuardianKill) != (s.Inst < 0) {
			t.Errorf("%+v: only the guardian kill is global", s)
		}
		key := fmt.Sprint(s.Inst, s.Kind)
		if end[key] > s.At {
			t.Errorf("%+v overlaps the previous %s of its instance (ends %s)", s, s.Kind, end[key])
		}
		end[key] = s.At + s.Dur
	}
	for _, k := range kinds {
		if seen[k.kind] == 0 {
			t.Errorf("30 minutes drew no %s", k.kind)
		}
	}
	only := schedule(7, d, 4, map[kind]bool{kForkFail: true})
	for _, s := range only {
		if s.Kind != kForkFail {
			t.Fatalf("kinds {fork_fail} drew %s", s.Kind)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{redis.ErrClosed, "unavailable"},
		{errors.New("dial unix /x: connect: connection refused"), "unavailable"},
		{proto("MISCONF Redis is configured to save RDB snapshots"), "MISCONF"},
		{proto("OOM command not allowed"), "OOM"},
		{proto("LOADING Redis is loading the dataset in memory"), "unavailable"},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// proto is an error reply as go-redis returns it.
type proto string

func (p proto) Error() string { return string(p) }
func (proto) RedisError()     {}
