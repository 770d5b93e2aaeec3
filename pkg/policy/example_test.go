package policy_test

import (
	"fmt"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// Evaluate diagnoses one snapshot and decides what to do about it: here a Redis
// that refuses writes because its last background save failed. It is pure, so
// the clock is an input, and the state it returns is passed to the next call.
func ExampleEvaluate() {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	snap := monitor.Snapshot{
		Instance: "main", Addr: "127.0.0.1:6379", Time: now,
		Redis: monitor.RedisReading{
			Info: monitor.ParseInfo("# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:86400\r\n" +
				"# Persistence\r\nrdb_changes_since_last_save:1523\r\nrdb_last_save_time:" + fmt.Sprint(now.Add(-time.Hour).Unix()) + "\r\n" +
				"rdb_last_bgsave_status:err\r\nrdb_bgsave_in_progress:0\r\naof_enabled:0\r\n" +
				"# Replication\r\nrole:master\r\n"),
			Config:     monitor.RedisConfig{"save": "3600 1", "stop-writes-on-bgsave-error": "yes", "dir": "/var/lib/redis", "dbfilename": "dump.rdb"},
			ConfigTime: now,
		},
		// A Redis on another host: no disk or memory readings (host_checks: off).
		Host: monitor.HostReading{Disabled: true},
	}
	res, _ := policy.Evaluate(policy.Input{
		Snapshot: snap, Remedies: policy.DefaultRemedies(), Thresholds: policy.DefaultThresholds(), Now: now,
	}, policy.State{})
	for _, f := range res.Findings {
		fmt.Println("finding:", f.Severity, f.ID)
	}
	for _, d := range res.Decisions {
		fmt.Println("decision:", d.Remedy, d.Action, d.Setting, d.Value)
	}
	// Output:
	// finding: critical misconf_rdb
	// finding: warning maxmemory_unset
	// decision: stop_writes set stop-writes-on-bgsave-error no
}
