package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// bgsaveInput is a failing save with stop_writes off, so only the retry acts.
func bgsaveInput() Input {
	in := decideInput()
	misconf(&in)
	ConfigOf[*StopWritesConfig](in.Remedies).Enabled = false
	return in
}

var bgsave = Decision{Remedy: RemedyBgsaveRetry, Action: ActBgsave, Reason: IDBgsaveFailed}

func TestDecideBgsaveBackoff(t *testing.T) {
	t.Parallel()
	in := bgsaveInput()
	r := ConfigOf[*BgsaveRetryConfig](in.Remedies)
	ds, st := Decide(in, State{})
	if got := only(ds, RemedyBgsaveRetry); len(got) != 0 {
		t.Fatalf("first tick of a failure: %+v, want only scheduling", got)
	}
	if want := now.Add(r.InitialBackoff); !bgState(st).NextRetry.Equal(want) {
		t.Errorf("NextRetry = %s, want %s", bgState(st).NextRetry, want)
	}
	last := now
	wantGap := r.InitialBackoff
	for i := range 9 {
		next := last.Add(wantGap)
		ds, st = Decide(at(in, next.Add(-time.Second)), st)
		if got := only(ds, RemedyBgsaveRetry); len(got) != 0 {
			t.Fatalf("retry %d: a second before %s: %+v, want nothing", i, next, got)
		}
		ds, st = Decide(at(in, next), st)
		got := only(ds, RemedyBgsaveRetry)
		if diff := cmp.Diff([]Decision{bgsave}, got, decisionOpts...); diff != "" {
			t.Fatalf("retry %d at +%s (-want +got):\n%s", i, next.Sub(now), diff)
		}
		st = Observe(st, next, []Outcome{{Decision: got[0], OK: true}})
		if bgState(st).RetryAttempt != i+1 {
			t.Errorf("retry %d: RetryAttempt = %d, want %d", i, bgState(st).RetryAttempt, i+1)
		}
		last = next
		wantGap = min(wantGap*2, r.MaxBackoff)
	}
	if wantGap != r.MaxBackoff {
		t.Errorf("the backoff never reached MaxBackoff: %s", wantGap)
	}

	// Any successful save resets the retries.
	in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "ok"
	_, st = Decide(at(in, last.Add(time.Second)), st)
	if !bgState(st).SaveFailedAt.IsZero() || bgState(st).RetryAttempt != 0 || !bgState(st).NextRetry.IsZero() {
		t.Errorf("after status ok: SaveFailedAt %s, RetryAttempt %d, NextRetry %s; want all zero", bgState(st).SaveFailedAt, bgState(st).RetryAttempt, bgState(st).NextRetry)
	}
}

func TestDecideBgsave(t *testing.T) {
	t.Parallel()
	later := now.Add(ConfigOf[*BgsaveRetryConfig](DefaultRemedies()).InitialBackoff)
	type tick func(in *Input)
	for _, tc := range []struct {
		name string
		// first is applied at now, second one tick later at second.
		first, second tick
		secondAt      time.Time
		want          []Decision
	}{
		{name: "due", secondAt: later, want: []Decision{bgsave}},
		{name: "not yet due", secondAt: later.Add(-time.Millisecond)},
		{name: "rdb child running", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.RDBBgsaveInProgress = true }},
		{name: "loading", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.Loading = true }},
		{name: "aof rewrite running", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.AOFRewriteInProgress = true },
			want: []Decision{{Remedy: RemedyBgsaveRetry, Action: ActBgsave, Reason: IDBgsaveFailed, Schedule: true}}},
		{name: "module fork running", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.ModuleForkInProgress = true },
			want: []Decision{{Remedy: RemedyBgsaveRetry, Action: ActBgsave, Reason: IDBgsaveFailed, Schedule: true}}},
		{name: "data dir writable again", secondAt: now.Add(time.Second),
			first: func(in *Input) { in.Snapshot.Host.DataDir.Writable = monitor.No }, want: []Decision{bgsave}},
		{name: "data dir still not writable", secondAt: now.Add(time.Second),
			first:  func(in *Input) { in.Snapshot.Host.DataDir.Writable = monitor.No },
			second: func(in *Input) { in.Snapshot.Host.DataDir.Writable = monitor.No }},
		{name: "room again", secondAt: now.Add(time.Second),
			first: func(in *Input) { in.Snapshot.Host.DataDir.Free = uint64(10 * mib) }, want: []Decision{bgsave}},
		{name: "snapshot will not fit", secondAt: later.Add(time.Hour),
			first:  func(in *Input) { in.Snapshot.Host.DataDir.Free = uint64(10 * mib) },
			second: func(in *Input) { in.Snapshot.Host.DataDir.Free = uint64(20 * mib) }},
		{name: "disabled", secondAt: later, second: func(in *Input) { ConfigOf[*BgsaveRetryConfig](in.Remedies).Enabled = false }},
		{name: "status ok", secondAt: later, second: func(in *Input) { in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "ok" }},
		{name: "stopping", secondAt: later, second: func(in *Input) { in.Stopping = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := bgsaveInput()
			if tc.first != nil {
				tc.first(&in)
			}
			ds, st := Decide(in, State{})
			if got := only(ds, RemedyBgsaveRetry); len(got) != 0 {
				t.Fatalf("first tick: %+v, want nothing", got)
			}
			in = at(bgsaveInput(), tc.secondAt)
			if tc.second != nil {
				tc.second(&in)
			}
			ds, _ = Decide(in, st)
			if diff := cmp.Diff(tc.want, only(ds, RemedyBgsaveRetry), decisionOpts...); diff != "" {
				t.Errorf("second tick (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideBgsaveCauseClearedDetail(t *testing.T) {
	t.Parallel()
	in := bgsaveInput()
	in.Snapshot.Host.DataDir.Writable = monitor.No
	_, st := Decide(in, State{})
	ds, _ := Decide(at(bgsaveInput(), now.Add(time.Second)), st)
	got := only(ds, RemedyBgsaveRetry)
	if len(got) != 1 || !strings.Contains(got[0].Detail, "writable again") {
		t.Errorf("got %+v, want one BGSAVE naming the cleared cause", got)
	}
}

// bgState is bgsave_retry's own state, as the tests read it.
func bgState(st State) bgsaveRetryState {
	s, _ := st.remedies[RemedyBgsaveRetry].(bgsaveRetryState)
	return s
}
