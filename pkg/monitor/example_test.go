package monitor_test

import (
	"fmt"
	"os"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// ParseInfo reads an INFO reply, here a fixture of a Redis whose last background
// save failed, into the fields the policy reasons about.
func ExampleParseInfo() {
	raw, err := os.ReadFile("testdata/info-6.2.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	info := monitor.ParseInfo(string(raw))
	fmt.Println("version:", info.Version, info.Role)
	fmt.Println("last bgsave:", info.RDBLastBgsaveStatus, "with", info.RDBChangesSinceLastSave, "changes unsaved")
	fmt.Println("writes refused with MISCONF:", info.ErrorstatMISCONF)
	fmt.Println("fork child running:", info.ForkChildRunning())
	// Output:
	// version: 6.2.14 master
	// last bgsave: err with 1523 changes unsaved
	// writes refused with MISCONF: 17
	// fork child running: false
}

// ParseLogLine recognises the Redis log line that explains a failed save, with
// its cause and Redis's own timestamp.
func ExampleParseLogLine() {
	line := "5324:M 21 Nov 2026 15:39:29.165 # Can't save in background: fork: Resource temporarily unavailable"
	ev, ok := monitor.ParseLogLine(line, time.UTC)
	fmt.Println(ok, ev.Kind, ev.Cause, ev.Time.Format(time.RFC3339Nano))
	// Output:
	// true fork_failed Resource temporarily unavailable 2026-11-21T15:39:29.165Z
}
