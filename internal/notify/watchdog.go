package notify

import (
	"sync"
	"time"
)

// Watchdog turns the loops' heartbeats into WATCHDOG=1 pings. It pings only when
// every registered loop has beaten since the previous ping, so one hung loop among
// many is enough for systemd to restart the service, while a Redis that is merely
// down (its loop still completes ticks) is not.
type Watchdog struct {
	n   *Notifier
	now func() time.Time
	// gap is the least time between two pings; systemd needs one per timeout and
	// recommends one per half timeout, so a few per timeout is plenty.
	gap time.Duration

	mu    sync.Mutex
	beats map[string]bool
	last  time.Time
}

// NewWatchdog returns a watchdog for n, or nil when systemd asked for none (a nil
// *Watchdog accepts every call and does nothing).
func NewWatchdog(n *Notifier, now func() time.Time) *Watchdog {
	if n.WatchdogInterval() == 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &Watchdog{n: n, now: now, gap: n.WatchdogInterval() / 4, beats: map[string]bool{}}
}

// Period is how often each loop must beat when idle: a third of the timeout, so
// two can be late before systemd gives up.
func (w *Watchdog) Period() time.Duration {
	if w == nil {
		return 0
	}
	return w.n.WatchdogInterval() / 3
}

// Register adds a loop that must beat from now on.
func (w *Watchdog) Register(name string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.beats[name] = false
}

// Unregister removes a loop (stopped on reload or shutdown).
func (w *Watchdog) Unregister(name string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.beats, name)
}

// Beat is called by a loop after a completed tick, or when idle for Period.
func (w *Watchdog) Beat(name string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.beats[name]; !ok {
		return
	}
	w.beats[name] = true
	for _, b := range w.beats {
		if !b {
			return
		}
	}
	now := w.now()
	if now.Sub(w.last) < w.gap {
		return
	}
	// A failed send is not fatal: systemd will restart us if pings stop for good,
	// which is exactly right when the socket is gone.
	_ = w.n.Send("WATCHDOG=1")
	w.last = now
	for k := range w.beats {
		w.beats[k] = false
	}
}
