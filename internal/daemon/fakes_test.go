package daemon_test

import (
	"context"
	"sync"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// fakeReader serves the snapshot that snap builds, and records how the loop used it.
type fakeReader struct {
	wake chan struct{}

	mu     sync.Mutex
	snap   func(now time.Time) monitor.Snapshot
	calls  []string // "snapshot", "stale", in order
	reads  int
	starts int
	// hang makes the next read wait for its context, as a slow Redis would, and
	// fail with the context's error.
	hang bool
}

var _ daemon.Reader = (*fakeReader)(nil)

func newFakeReader(snap func(now time.Time) monitor.Snapshot) *fakeReader {
	return &fakeReader{wake: make(chan struct{}, 1), snap: snap}
}

func (f *fakeReader) Name() string { return "fake" }

func (f *fakeReader) Snapshot(ctx context.Context, now time.Time) monitor.Snapshot {
	f.mu.Lock()
	if f.hang {
		f.hang = false
		f.reads++
		f.mu.Unlock()
		<-ctx.Done()
		s := f.snap(now)
		s.Redis.Err = ctx.Err()
		return s
	}
	defer f.mu.Unlock()
	f.reads++
	f.calls = append(f.calls, "snapshot")
	return f.snap(now)
}

func (f *fakeReader) Wake() <-chan struct{} { return f.wake }

func (f *fakeReader) MarkConfigStale() {
	f.mu.Lock()
	f.calls = append(f.calls, "stale")
	f.mu.Unlock()
}

// MarkHostStale is a no-op: the fake has no host reading to reuse.
func (f *fakeReader) MarkHostStale() {}

func (f *fakeReader) SetFollowerStarter(func(*monitor.Follower) func()) {
	f.mu.Lock()
	f.starts++
	f.mu.Unlock()
}

func (f *fakeReader) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// fakeWriter holds what the loop sets, as a ledger would, and records every call.
type fakeWriter struct {
	mu       sync.Mutex
	held     map[string]remediate.Change
	yield    []policy.Yield // what the next Reconcile reports as yielded to an operator
	calls    []string       // "reconcile", "execute <action> <setting>", in order
	executed []policy.Decision
	kept     []policy.Yield // the yields the loop last kept
}

var _ daemon.Writer = (*fakeWriter)(nil)

// KeptYields: the fake starts with none kept.
func (f *fakeWriter) KeptYields() []policy.Yield { return nil }

// KeepYields records what the loop keeps.
func (f *fakeWriter) KeepYields(ys []policy.Yield) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kept = ys
}

func newFakeWriter() *fakeWriter { return &fakeWriter{held: map[string]remediate.Change{}} }

func (f *fakeWriter) Execute(_ context.Context, d policy.Decision) policy.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "execute "+string(d.Action)+" "+d.Setting)
	f.executed = append(f.executed, d)
	switch d.Action {
	case policy.ActSet:
		f.held[d.Setting] = remediate.Change{Setting: d.Setting, Original: "yes", Value: d.Value, Remedy: d.Remedy, Reason: d.Reason, Time: time.Now()}
	case policy.ActUndo:
		delete(f.held, d.Setting)
	}
	return policy.Outcome{Decision: d, OK: true}
}

func (f *fakeWriter) Reconcile(_ monitor.RedisReading, fresh bool) []policy.Yield {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !fresh {
		return nil
	}
	f.calls = append(f.calls, "reconcile")
	y := f.yield
	f.yield = nil
	return y
}

func (f *fakeWriter) Held() map[string]policy.Held {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]policy.Held{}
	for k, c := range f.held {
		out[k] = policy.Held{Setting: c.Setting, Original: c.Original, Value: c.Value, Remedy: c.Remedy, Since: c.Time}
	}
	return out
}

func (f *fakeWriter) Changes() []remediate.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []remediate.Change
	for _, c := range f.held {
		out = append(out, c)
	}
	return out
}

func (f *fakeWriter) Stranded() map[string]string { return nil }

func (f *fakeWriter) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeWriter) Executed() []policy.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]policy.Decision(nil), f.executed...)
}
