package monitor

import (
	"strings"
	"testing"
)

// TestParseInfoMemoryBreakdown: every supported server reports what used_memory
// is made of and the allocator's fragmentation under the same names, and the
// parts add up as the policy assumes (dataset + overhead = used_memory).
func TestParseInfoMemoryBreakdown(t *testing.T) {
	t.Parallel()
	for _, b := range captureBuilds {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			in := ParseInfo(infoFixture(t, "info-"+b.name+".txt"))
			for what, ok := range map[string]bool{
				"used_memory_overhead":       in.HasMemoryBreakdown && in.UsedMemoryOverhead > 0,
				"dataset + overhead":         in.UsedMemoryDataset+in.UsedMemoryOverhead == in.UsedMemory,
				"used_memory_startup":        in.UsedMemoryStartup > 0 && in.UsedMemoryStartup <= in.UsedMemoryOverhead,
				"used_memory_scripts":        in.UsedMemoryScripts > 0,
				"used_memory_vm_eval":        in.UsedMemoryVMEval > 0,
				"mem_aof_buffer (AOF is on)": in.MemAOFBuffer > 0,
				"allocator_frag_bytes":       in.HasAllocatorFrag && in.AllocatorFragRatio > 0,
				"allocator_active":           in.AllocatorActive >= in.AllocatorAllocated && in.AllocatorResident >= in.AllocatorActive,
				"mem_allocator":              strings.HasPrefix(in.MemAllocator, "jemalloc"),
			} {
				if !ok {
					t.Errorf("%s not read as expected: %+v", what, in)
				}
			}
		})
	}
}

// TestParseInfoMemoryAbsent: a server that reports none of the breakdown (before
// 4.0, or a fork that leaves it out) leaves the flags false, not an error.
func TestParseInfoMemoryAbsent(t *testing.T) {
	t.Parallel()
	in := ParseInfo("# Memory\r\nused_memory:1000\r\nused_memory_rss:5000\r\nmem_fragmentation_ratio:5.00\r\nmem_allocator:libc\r\n")
	if in.HasMemoryBreakdown || in.HasAllocatorFrag || in.MemClientsNormal != 0 || in.MemAllocator != "libc" || in.UsedMemory != 1000 {
		t.Errorf("absent breakdown read as %+v", in)
	}
	in = ParseInfo("used_memory:100\r\nused_memory_overhead:90\r\nmem_clients_normal:80\r\nmem_clients_slaves:5\r\nused_memory_dataset:10\r\n" +
		"mem_not_counted_for_evict:5\r\nallocator_frag_bytes:7\r\nallocator_frag_ratio:1.50\r\nallocator_rss_bytes:3\r\nactive_defrag_running:25\r\n" +
		"# Stats\r\nactive_defrag_hits:1234\r\nactive_defrag_misses:99\r\n")
	if !in.HasMemoryBreakdown || in.MemClientsNormal != 80 || in.MemClientsSlaves != 5 || in.MemNotCountedForEvict != 5 ||
		!in.HasAllocatorFrag || in.AllocatorFragBytes != 7 || in.AllocatorFragRatio != 1.5 || in.AllocatorRSSBytes != 3 || !in.ActiveDefragRunning || in.ActiveDefragHits != 1234 {
		t.Errorf("breakdown read as %+v", in)
	}
}
