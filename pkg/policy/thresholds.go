package policy

import "time"

// Thresholds are the limits at which a reading becomes a finding. The defaults follow
// common Redis troubleshooting practice; every one can be overridden per instance.
type Thresholds struct {
	// FragmentationRatio: allocator_frag_ratio above it is fragmentation_high,
	// once allocator_frag_bytes reach FragmentationMinBytes (a small instance
	// shows any ratio, and nobody should be paged for 3 MiB). On a server without
	// the allocator's numbers (libc malloc, before 5.0) the same limits apply to
	// mem_fragmentation_ratio and RSS - used_memory.
	FragmentationRatio    float64
	FragmentationMinBytes int64
	// MaxmemoryUsedPercent of maxmemory in use is maxmemory_near_limit.
	MaxmemoryUsedPercent float64
	// AOFGrowthRatio: aof_current_size above ratio x aof_base_size is aof_growth_high.
	AOFGrowthRatio float64
	// AOFBufferBytes: aof_buffer_length above it means fsync cannot keep up.
	AOFBufferBytes int64
	// DiskUsedPercent of the data dir's filesystem in use is disk_space_low.
	DiskUsedPercent float64
	// ForkSlow: latest_fork_usec above it is fork_slow (every fork stalls all clients).
	ForkSlow time.Duration
	// CgroupForkFactor: a cgroup memory limit below the group's working set plus
	// (factor - 1) x used_memory_rss (factor x the RSS for Redis alone in its
	// group) is cgroup_memory_tight, because a fork child under write load can
	// double the RSS.
	CgroupForkFactor float64
	// ForkHeadroomFactor: with vm.overcommit_memory != 1, available memory (RAM and
	// swap) below factor x used_memory_rss is fork_headroom_low.
	ForkHeadroomFactor float64
	// SwapBytes of the Redis process in swap is swapping.
	SwapBytes int64
	// ReplLinkDownGrace is how long a replica's link may be down before it is a finding.
	ReplLinkDownGrace time.Duration
	// StaleTempMinAge is the age after which a dead child's temp file is reported.
	StaleTempMinAge time.Duration
}

// DefaultThresholds returns the documented defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{
		FragmentationRatio:    1.5,
		FragmentationMinBytes: 64 << 20,
		MaxmemoryUsedPercent:  90,
		AOFGrowthRatio:        3,
		AOFBufferBytes:        10 << 20,
		DiskUsedPercent:       90,
		ForkSlow:              500 * time.Millisecond,
		CgroupForkFactor:      2,
		ForkHeadroomFactor:    1,
		SwapBytes:             1 << 20,
		ReplLinkDownGrace:     10 * time.Second,
		StaleTempMinAge:       10 * time.Minute,
	}
}
