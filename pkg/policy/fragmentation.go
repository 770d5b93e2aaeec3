package policy

import (
	"fmt"
	"strings"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// fragmentation is fragmentation_high on the allocator's own numbers.
// mem_fragmentation_ratio is RSS / used_memory: a 1 MiB instance shows 6 to 8
// without any fragmentation, and pages the allocator is about to give back
// count in it. allocator_active - allocator_allocated (5.0+, jemalloc) is memory
// in pages the allocator holds partly used: only active defrag or a restart
// returns it, so that is what the finding judges, above FragmentationRatio and
// at least FragmentationMinBytes of it (as Redis's own MEMORY DOCTOR does, with
// its 1.1 and 10 MB). Redis and Valkey 8.0 print that difference as
// allocator_frag_bytes; Valkey 8.1 prints the small bins' share measured by its
// defrag code instead, and 0 when built without the defrag hint, so the
// difference is computed here. allocator_rss_* is whole empty pages, which
// jemalloc's background thread returns by itself within about a minute:
// evidence, not a cause.
func (d *diag) fragmentation() {
	if !d.info.HasAllocatorFrag {
		d.fragmentationRSS()
		return
	}
	if f, ok := d.allocatorFragmentation(); ok {
		d.out = append(d.out, f)
	}
}

// allocatorFrag is the allocator's fragmentation: allocator_active -
// allocator_allocated and their ratio (see fragmentation for why the
// difference, not allocator_frag_bytes); ok is false without the allocator's
// numbers.
func allocatorFrag(in *monitor.Info) (frag int64, ratio float64, ok bool) {
	if !in.HasAllocatorFrag {
		return 0, 0, false
	}
	frag, ratio = in.AllocatorFragBytes, in.AllocatorFragRatio
	if in.AllocatorAllocated > 0 && in.AllocatorActive > in.AllocatorAllocated {
		frag = in.AllocatorActive - in.AllocatorAllocated
		ratio = float64(in.AllocatorActive) / float64(in.AllocatorAllocated)
	}
	return frag, ratio, true
}

// fragHigh is fragmentation_high's condition on the allocator's numbers: the
// finding and the defrag remedy judge by the same one.
func fragHigh(frag int64, ratio float64, t Thresholds) bool {
	return ratio > t.FragmentationRatio && frag >= t.FragmentationMinBytes
}

// allocatorFragmentation is fragmentation_high on the allocator's numbers, with
// the fix for a guardian that does not hold activedefrag (the defrag remedy
// replaces the fix with what it learnt: Evaluate).
func (d *diag) allocatorFragmentation() (Finding, bool) {
	in := d.info
	frag, ratio, ok := allocatorFrag(in)
	if !ok || !fragHigh(frag, ratio, d.t) {
		return Finding{}, false
	}
	cause := fmt.Sprintf("allocator_active %s for allocator_allocated %s: %s in pages the allocator holds partly empty (ratio %.2f); used_memory %s, RSS %s",
		HumanBytes(in.AllocatorActive), HumanBytes(in.AllocatorAllocated), HumanBytes(frag), ratio,
		HumanBytes(in.UsedMemory), HumanBytes(in.UsedMemoryRSS))
	// Valkey 8.1+ reports no small-bin fragmentation at all only when it cannot
	// measure it: built without the defrag hint, so without active defrag.
	noHint := in.AllocatorFragBytes == 0
	if noHint {
		cause += "; allocator_frag_bytes reads 0: Valkey 8.1+ measures it only when built with jemalloc's defrag hint, so this build cannot defrag"
	}
	if in.AllocatorRSSBytes > 0 {
		cause += fmt.Sprintf("; allocator_rss_bytes %s more are empty pages the allocator gives back by itself (jemalloc's background thread, or MEMORY PURGE at once)", HumanBytes(in.AllocatorRSSBytes))
	}
	fix := d.defragFix(frag, true)
	if noHint {
		fix = "active defrag is not available in this build: " + restartFix(frag)
	}
	return Finding{ID: IDFragmentationHigh, Severity: Warning,
		Summary: fmt.Sprintf("the allocator holds %s in fragmented pages (allocator_active / allocator_allocated %.2f)", HumanBytes(frag), ratio),
		Cause:   cause, Fix: fix}, true
}

// fragmentationRSS is the rule for a server without the allocator's numbers
// (libc malloc, or before 5.0): RSS against used_memory, with the same floor.
func (d *diag) fragmentationRSS() {
	in := d.info
	wasted := in.MemFragmentationBytes
	if !in.HasFragmentationBytes {
		wasted = in.UsedMemoryRSS - in.UsedMemory
	}
	if in.MemFragmentationRatio <= d.t.FragmentationRatio || wasted < d.t.FragmentationMinBytes {
		return
	}
	d.add(IDFragmentationHigh, Warning, fmt.Sprintf("memory fragmentation ratio is %.2f", in.MemFragmentationRatio),
		fmt.Sprintf("RSS %s for %s of data, %s wasted (this server reports no allocator_frag_*: mem_allocator %s)",
			HumanBytes(in.UsedMemoryRSS), HumanBytes(in.UsedMemory), HumanBytes(wasted), orUnknown(in.MemAllocator)),
		d.defragFix(wasted, false))
}

// restartFix is the fix that works on every build: a restart returns the
// fragmented pages (the dataset is loaded into fresh ones), and a failover first
// keeps the writes flowing while it happens.
func restartFix(returned int64) string {
	return fmt.Sprintf("fail over to a replica and restart this one, which would return about %s", HumanBytes(returned))
}

// defragFix is advice this build can carry out. Whether activedefrag works is not
// in INFO: Debian's packages refuse `CONFIG SET activedefrag yes` (their system
// jemalloc lacks the defrag hint Redis's bundled one has), upstream builds accept
// it. Diagnosis never sets it to find out (CONFIG GET tells only when it is
// already on, which a build without support would have refused): the opt-in
// defrag remedy asks the server, and its finding then says what it learnt. It
// judges the allocator's numbers, so it is named only where they are (remedy).
func (d *diag) defragFix(returned int64, remedy bool) string {
	restart := restartFix(returned)
	if strings.HasPrefix(d.info.MemAllocator, "libc") {
		return "active defrag needs jemalloc and this build uses " + d.info.MemAllocator + ": " + restart
	}
	if v, _ := d.cfg.Get(SettingActiveDefrag); v == "yes" {
		running := "not running now"
		if d.info.ActiveDefragRunning {
			running = "running now"
		}
		return fmt.Sprintf("activedefrag is on and %s (active_defrag_running): let it work, or lower active-defrag-ignore-bytes / active-defrag-threshold-lower if it never starts; if it cannot keep up, %s", running, restart)
	}
	only := "active defrag (activedefrag yes) works only on builds with Redis's bundled jemalloc, which Debian's packages lack (they refuse it); "
	if remedy {
		only += "remedies.defrag asks the server and holds it while fragmentation is high. "
	}
	return only + "On any build: " + restart
}
