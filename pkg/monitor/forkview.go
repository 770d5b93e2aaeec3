package monitor

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
}

// Free is how many slots nobody holds.
func (v ForkView) Free() int {
	n := v.Slots - len(v.Others)
	if v.Mine {
		n--
	}
	return max(n, 0)
}
