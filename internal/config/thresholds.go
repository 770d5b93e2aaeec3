package config

import (
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// thresholds reads a thresholds section (global or an instance's) over t, so an
// instance overrides only the keys it sets.
func (v *validator) thresholds(p string, r *rawThresholds, t *policy.Thresholds) {
	if r == nil {
		return
	}
	v.positive(p+".fragmentation_ratio", r.FragmentationRatio, &t.FragmentationRatio)
	v.size(p+".fragmentation_min_bytes", r.FragmentationMinBytes, &t.FragmentationMinBytes)
	v.percent(p+".maxmemory_used_percent", r.MaxmemoryUsedPercent, &t.MaxmemoryUsedPercent)
	v.positive(p+".aof_growth_ratio", r.AOFGrowthRatio, &t.AOFGrowthRatio)
	v.size(p+".aof_buffer_bytes", r.AOFBufferBytes, &t.AOFBufferBytes)
	v.percent(p+".disk_used_percent", r.DiskUsedPercent, &t.DiskUsedPercent)
	v.duration(p+".fork_slow", r.ForkSlow, &t.ForkSlow, time.Millisecond)
	v.positive(p+".cgroup_fork_factor", r.CgroupForkFactor, &t.CgroupForkFactor)
	v.positive(p+".fork_headroom_factor", r.ForkHeadroomFactor, &t.ForkHeadroomFactor)
	v.size(p+".swap_bytes", r.SwapBytes, &t.SwapBytes)
	v.duration(p+".repl_link_down_grace", r.ReplLinkDownGrace, &t.ReplLinkDownGrace, 0)
	v.duration(p+".stale_temp_min_age", r.StaleTempMinAge, &t.StaleTempMinAge, 0)
}
