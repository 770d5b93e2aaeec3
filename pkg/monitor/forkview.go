package monitor

import "time"

// ForkView is the host's fork slots as one instance sees them when its snapshot
// is taken: how many children the host's Redis instances may run at once
// (fork_budget's max_concurrent), whether this instance holds one of the slots,
// and who holds the others (the name and pid each holder wrote into its slot
// file). The slots are lock files in the runtime directory, shared by every
// guardian process of the host (internal/forkslot reads and takes them).
type ForkView struct {
	// Known is set when the slots were read; Err says why not.
	Known bool
	Err   string
	// Slots is how many slots there are (max_concurrent).
	Slots int
	// Mine says this instance holds a slot.
	Mine bool
	// Others are the holders of the other taken slots ("name pid"; "?" when a
	// holder wrote nothing readable).
	Others []string
	// Waiting is when this instance began to wait for a slot (zero when it
	// does not wait); Waiters are the other instances that wait, oldest first.
	Waiting time.Time
	Waiters []ForkWaiter
	// Beyond are slots numbered Slots or more that someone holds ("fork-slot-1
	// held by cache 42"): another guardian of the host runs with a larger
	// max_concurrent, so the budget is not the one configured here.
	Beyond []string
}

// ForkWaiter is an instance that waits for a fork slot.
type ForkWaiter struct {
	Holder string // "name pid"
	Since  time.Time
}

// Ahead lists the waiters that have waited longer than an instance waiting
// since since (every waiter, when since is zero: it does not wait yet): the
// saves that go first.
func (v ForkView) Ahead(since time.Time) []string {
	var out []string
	for _, w := range v.Waiters {
		if since.IsZero() || w.Since.Before(since) {
			out = append(out, w.Holder)
		}
	}
	return out
}

// Free is how many slots nobody holds.
func (v ForkView) Free() int {
	n := v.Slots - len(v.Others)
	if v.Mine {
		n--
	}
	return max(n, 0)
}
