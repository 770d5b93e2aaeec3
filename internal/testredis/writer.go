package testredis

import (
	"context"
	"maps"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// WriteStats counts the outcomes of a Writer's SETs. Times are when a reply arrived,
// except LastRejectSent.
type WriteStats struct {
	// OK is the number of successful SETs.
	OK int
	// Rejected is the number of failed SETs, whatever the error.
	Rejected int
	// FirstReject and LastReject are the times of the first and the last failed SET.
	FirstReject, LastReject time.Time
	// LastRejectSent is when the last failed SET was sent. On a loaded machine
	// its reply may be read long after Redis answered it: "a write sent after X
	// was rejected" is exact, "a reply read after X said rejected" is not.
	LastRejectSent time.Time
	// FirstOKAfterReject is the time of the first successful SET after LastReject; zero
	// when writes had not recovered yet (or never failed).
	FirstOKAfterReject time.Time
	// Errors counts failures by the error's first word, e.g. "MISCONF", "LOADING", "dial".
	Errors map[string]int
	// LastSent is when the last failed SET of each kind (the keys of Errors) was
	// sent: a test judges the rejections Redis made (MISCONF) apart from its own
	// client's (a "dial" error: go-redis's pool of one fails every call fast for up
	// to a second after a dial failed, whatever the server does meanwhile).
	LastSent map[string]time.Time
}

// Writer is a write load on a Server: one goroutine doing SET wload:<n> in a loop and
// counting the results. Create it with Server.StartWriter.
type Writer struct {
	client *redis.Client
	cancel context.CancelFunc
	done   chan struct{}
	stop   sync.Once

	mu    sync.Mutex
	stats WriteStats
}

// StartWriter starts a Writer that sends one SET every interval (every=0: back to back,
// yielding between writes). Each SET is tried once (no client retries), so every rejected
// write is counted. t.Cleanup stops it.
func (s *Server) StartWriter(t testing.TB, every time.Duration) *Writer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		client: s.newClient(func(o *redis.Options) {
			o.MaxRetries = -1
			o.PoolSize = 1
			o.DialTimeout = time.Second
			o.ReadTimeout = 2 * time.Second
			o.WriteTimeout = 2 * time.Second
		}),
		cancel: cancel,
		done:   make(chan struct{}),
		stats:  WriteStats{Errors: map[string]int{}, LastSent: map[string]time.Time{}},
	}
	go w.loop(ctx, every)
	t.Cleanup(func() { w.Stop() })
	return w
}

func (w *Writer) loop(ctx context.Context, every time.Duration) {
	defer close(w.done)
	var tick <-chan time.Time
	if every > 0 {
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		tick = ticker.C
	}
	for n := 1; ; n++ {
		sent := time.Now()
		err := w.client.Set(ctx, "wload:"+strconv.Itoa(n), n, 0).Err()
		if ctx.Err() != nil {
			return // cut short by Stop: not an outcome of the server
		}
		w.record(sent, time.Now(), err)
		if tick == nil {
			runtime.Gosched()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

func (w *Writer) record(sent, at time.Time, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := &w.stats
	if err == nil {
		st.OK++
		if !st.LastReject.IsZero() && st.FirstOKAfterReject.IsZero() {
			st.FirstOKAfterReject = at
		}
		return
	}
	st.Rejected++
	if st.FirstReject.IsZero() {
		st.FirstReject = at
	}
	st.LastReject, st.LastRejectSent = at, sent
	st.FirstOKAfterReject = time.Time{}
	prefix := "unknown"
	if f := strings.Fields(err.Error()); len(f) > 0 {
		prefix = f[0]
	}
	st.Errors[prefix]++
	st.LastSent[prefix] = sent
}

// Stats returns the counts so far; the Writer keeps running.
func (w *Writer) Stats() WriteStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.stats
	st.Errors = maps.Clone(w.stats.Errors)
	st.LastSent = maps.Clone(w.stats.LastSent)
	return st
}

// Stop stops the Writer, waits for its goroutine and returns the final counts. It may be
// called more than once.
func (w *Writer) Stop() WriteStats {
	w.stop.Do(func() {
		w.cancel()
		<-w.done
		_ = w.client.Close()
	})
	return w.Stats()
}
