package daemon_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestForkBudgetSavesInTurn: saves that wait for the host's fork slot are served
// in the order they began to wait, not by whichever instance ticks first. A's
// long save child holds the only slot; B's automatic save comes due and waits,
// then C's, a second later. C's guardian ticks ten times as often as B's (an
// instance with a short interval, or another guardian with one), so on the code
// before the turn C took the slot the moment A's child ended, ahead of B, which
// had waited longer (and, with saves coming due again, B could wait until
// max_deferral). Now B saves first, then C, one child at a time.
func TestForkBudgetSavesInTurn(t *testing.T) {
	t.Parallel()
	a := testredis.Start(t, testredis.Options{Save: ""})
	b := testredis.Start(t, testredis.Options{Save: forkBudgetSave})
	c := testredis.Start(t, testredis.Options{Save: forkBudgetSave})
	srvs := []*testredis.Server{a, b, c}
	a.Fill(t, 400, 16)
	for _, s := range srvs[1:] {
		s.Fill(t, 100, 16)
	}
	startFleet(t, srvs, func(rs policy.Remedies) {
		policy.ConfigOf[*policy.ForkBudgetConfig](rs).MaxDeferral = time.Minute
		policy.ConfigOf[*policy.ForkBudgetConfig](rs).EarlySave = false
	}, func(i int, l *daemon.Instance) {
		l.Interval, l.FastPoll = time.Second, 0
		if i == 2 {
			l.Interval = 100 * time.Millisecond
		}
	})
	ctx := context.Background()
	// B's save point comes due 6 s after its SAVE, C's a second later; A's child
	// (400 keys at 20 ms, 8 s) runs from before either until after both.
	if err := b.Client(t).Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Client(t).Set(ctx, "due", "b", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := c.Client(t).Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Client(t).Set(ctx, "due", "c", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ac := a.Client(t)
	if err := ac.ConfigSet(ctx, "rdb-key-save-delay", "20000").Err(); err != nil {
		t.Fatal(err)
	}
	if err := ac.BgSave(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range srvs[1:] {
		if err := s.Client(t).ConfigSet(ctx, "rdb-key-save-delay", "10000").Err(); err != nil {
			t.Fatal(err)
		}
	}

	// An observer of the servers' own INFO: when each first ran a child, and
	// whether two ever ran at once.
	var mu sync.Mutex
	first := make([]time.Time, len(srvs))
	most := 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		n := 0
		for i, s := range srvs {
			if persistence(ctx, s.Client(t))["rdb_bgsave_in_progress"] == "1" {
				n++
				mu.Lock()
				if first[i].IsZero() {
					first[i] = time.Now()
				}
				mu.Unlock()
			}
		}
		most = max(most, n)
		if !first[1].IsZero() && !first[2].IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 90 s: B's first child at %v, C's at %v (zero: none)", first[1], first[2])
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("children started: A %s, B %s, C %s; at most %d at once",
		first[0].Format("15:04:05.000"), first[1].Format("15:04:05.000"), first[2].Format("15:04:05.000"), most)
	if most != 1 {
		t.Errorf("%d fork children ran at once, want 1", most)
	}
	if !first[1].Before(first[2]) {
		t.Errorf("C's save (due a second after B's, waiting since later) ran before B's: the waiting saves were not served in turn")
	}
}
