package monitor

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &ttlCache{ttl: time.Minute, now: func() time.Time { return clock }}
	loads := 0
	load := func() (int, error) { loads++; return loads, nil }

	if v, _ := cached(c, "k", load); v != 1 {
		t.Fatalf("first get = %d, want 1 (a load)", v)
	}
	clock = clock.Add(59 * time.Second)
	if v, _ := cached(c, "k", load); v != 1 {
		t.Errorf("get within the TTL = %d, want the cached 1", v)
	}
	if v, _ := cached(c, "other", load); v != 2 {
		t.Errorf("get of another key = %d, want a fresh load (2)", v)
	}
	clock = clock.Add(2 * time.Second)
	if v, _ := cached(c, "k", load); v != 3 {
		t.Errorf("get after the TTL = %d, want a fresh load (3)", v)
	}
	// A clock that goes back (settimeofday) must not pin an entry forever.
	clock = clock.Add(-time.Hour)
	if v, _ := cached(c, "k", load); v != 4 {
		t.Errorf("get after the clock went back = %d, want a fresh load (4)", v)
	}

	errBoom := errors.New("boom")
	failing := func() (int, error) { loads++; return -1, errBoom }
	if _, err := cached(c, "bad", failing); !errors.Is(err, errBoom) {
		t.Errorf("error from load = %v, want boom", err)
	}
	n := loads
	if _, err := cached(c, "bad", failing); !errors.Is(err, errBoom) || loads != n {
		t.Errorf("cached error = %v after %d loads, want boom from the cache", err, loads-n)
	}
}

func TestTTLCacheDisabledAndBounded(t *testing.T) {
	t.Parallel()
	loads := 0
	load := func() (int, error) { loads++; return loads, nil }
	off := &ttlCache{ttl: 0, now: time.Now}
	cached(off, "k", load)
	cached(off, "k", load)
	if loads != 2 {
		t.Errorf("ttl 0: %d loads for 2 gets, want 2 (no caching)", loads)
	}

	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &ttlCache{ttl: time.Second, now: func() time.Time { return clock }}
	for i := range 10 * hostCacheMax {
		cached(c, strconv.Itoa(i), load)
		clock = clock.Add(100 * time.Millisecond)
	}
	if len(c.m) > hostCacheMax+1 {
		t.Errorf("cache holds %d entries, want at most %d: expired pids must be dropped", len(c.m), hostCacheMax+1)
	}
}
