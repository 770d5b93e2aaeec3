package policy

import "time"

// Thresholds are the limits at which a reading becomes a finding. The defaults follow
// common Redis troubleshooting practice; every one can be overridden per instance.
type Thresholds struct {
	// FragmentationRatio: mem_fragmentation_ratio above it is fragmentation_high,
	// once at least FragmentationMinBytes are wasted (small instances always look
	// fragmented and nobody should be paged for 3 MiB).
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
	// CgroupForkFactor: a cgroup memory.max below factor x used_memory_rss is
	// cgroup_memory_tight, because a fork child under write load can double the RSS.
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
		FragmentationMinBytes: 100 << 20,
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

// Remedies holds the settings of every remedy.
type Remedies struct {
	StopWrites      StopWrites
	BgsaveRetry     BgsaveRetry
	RewriteDeferral RewriteDeferral
	TempCleanup     TempCleanup
}

// Limits are the rate limits every remedy has, so a remedy that misfires cannot
// hammer a Redis.
type Limits struct {
	Enabled    bool
	Cooldown   time.Duration
	MaxPerHour int
}

// StopWrites configures the stop-writes-on-bgsave-error toggle.
type StopWrites struct {
	Limits
	// RequireAOF: only toggle while AOF is on and healthy, for operators who accept
	// writes without snapshots only when the AOF still makes them durable.
	RequireAOF bool
	// Predictive: toggle before a save fails when the guardian sees it cannot fit.
	Predictive bool
	// WarnEvery repeats the "still held" warning.
	WarnEvery time.Duration
}

// BgsaveRetry configures the retry of a failed BGSAVE.
type BgsaveRetry struct {
	Limits
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// RewriteDeferral configures the deferral of AOF rewrites under load.
type RewriteDeferral struct {
	Limits
	HighOps     float64
	LowOps      float64
	Window      time.Duration
	Dwell       time.Duration
	MaxDeferral time.Duration
}

// TempCleanup configures the removal of Redis's stale temp files.
type TempCleanup struct {
	Limits
	MinAge time.Duration
}

// DefaultRemedies returns the documented defaults.
func DefaultRemedies() Remedies {
	return Remedies{
		StopWrites: StopWrites{
			Limits:     Limits{Enabled: true, Cooldown: 0, MaxPerHour: 30},
			Predictive: true,
			WarnEvery:  5 * time.Minute,
		},
		BgsaveRetry: BgsaveRetry{
			Limits:         Limits{Enabled: true, MaxPerHour: 60},
			InitialBackoff: 5 * time.Second,
			MaxBackoff:     5 * time.Minute,
		},
		RewriteDeferral: RewriteDeferral{
			Limits:      Limits{Enabled: true, MaxPerHour: 12},
			HighOps:     10000,
			LowOps:      5000,
			Window:      10 * time.Second,
			Dwell:       30 * time.Second,
			MaxDeferral: time.Hour,
		},
		TempCleanup: TempCleanup{
			Limits: Limits{Enabled: true, MaxPerHour: 60},
			MinAge: 10 * time.Minute,
		},
	}
}
