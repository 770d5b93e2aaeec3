package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// writeEvery is the writer's pace: 500 writes/s per instance, nominal.
	writeEvery = 2 * time.Millisecond
	// writeKeys bounds the writer's key space, so the dataset stays a few MB
	// however long the soak runs.
	writeKeys = 20000
)

// rejection is one failed write: when it was sent and how it failed.
type rejection struct {
	inst  int
	sent  time.Time
	class string // MISCONF, OOM, READONLY ... for Redis's replies; "unavailable" for the rest
}

// writer is the write load on one instance: SET soak:<n mod writeKeys> every
// writeEvery, each tried once, every failure recorded with the time it was sent.
type writer struct {
	inst   int
	client *redis.Client

	mu       sync.Mutex
	ok       int
	rejected []rejection
}

func newWriter(inst int, socket string) *writer {
	return &writer{inst: inst, client: redis.NewClient(&redis.Options{
		Network: "unix", Addr: socket, MaxRetries: -1, PoolSize: 1, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})}
}

// run writes until ctx ends.
func (w *writer) run(ctx context.Context) {
	defer w.client.Close()
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	val := strings.Repeat("v", 100)
	for n := 0; ; n++ {
		sent := time.Now()
		err := w.client.Set(ctx, "soak:"+strconv.Itoa(n%writeKeys), val, 0).Err()
		if ctx.Err() != nil {
			return
		}
		w.record(sent, err)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *writer) record(sent time.Time, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.ok++
		return
	}
	w.rejected = append(w.rejected, rejection{inst: w.inst, sent: sent, class: classify(err)})
}

// classify names a failed write: the first word of Redis's error reply (a write
// Redis refused), or "unavailable" when no reply came (refused connection,
// timeout, a restart) or Redis was loading its dataset.
func classify(err error) string {
	var re redis.Error
	if !errors.As(err, &re) {
		return "unavailable"
	}
	f := strings.Fields(re.Error())
	if len(f) == 0 || f[0] == "LOADING" {
		return "unavailable"
	}
	return f[0]
}

// counts returns the successful writes and the failures so far.
func (w *writer) counts() (ok int, rejected []rejection) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok, append([]rejection(nil), w.rejected...)
}
