package remediate_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// configRedis answers CONFIG GET from a map and counts CONFIG SETs: a stand-in
// for the *redis.Client an Executor is normally given.
type configRedis struct {
	settings map[string]string
	sets     int
}

func (r *configRedis) Do(ctx context.Context, args ...any) *redis.Cmd {
	cmd := redis.NewCmd(ctx, args...)
	switch sub := strings.ToUpper(fmt.Sprint(args[1])); sub {
	case "GET":
		name := fmt.Sprint(args[2])
		cmd.SetVal([]any{name, r.settings[name]})
	case "SET":
		r.sets++
		cmd.SetVal("OK")
	}
	return cmd
}

// An Executor in dry-run carries out a decision on paper: the ledger (here in
// memory) records the change with its original value and OnEvent hears of it,
// but Redis is only read, never written.
func ExampleExecutor_dryRun() {
	rdb := &configRedis{settings: map[string]string{"stop-writes-on-bgsave-error": "yes"}}
	ledger := remediate.NewMemLedger()
	exec := &remediate.Executor{
		Instance: "main", Addr: "127.0.0.1:6379", Client: rdb, ConfigCommand: "CONFIG",
		Ledger: ledger, DryRun: true, Log: zap.NewNop(),
		Now: func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) },
		OnEvent: func(event events.Name, remedy, limit string) {
			fmt.Printf("event %s by %s\n", event, remedy)
		},
	}
	out := exec.Execute(context.Background(), policy.Decision{
		Remedy: "stop_writes", Action: policy.ActSet, Setting: "stop-writes-on-bgsave-error", Value: "no",
		Reason: "bgsave_failed", Detail: "the last background save failed",
	})
	fmt.Println("ok:", out.OK)
	for _, c := range ledger.All() {
		fmt.Printf("ledger: %s %s (was %s) since %s\n", c.Setting, c.Value, c.Original, c.Time.Format(time.RFC3339))
	}
	fmt.Println("CONFIG SETs sent:", rdb.sets)
	// Output:
	// event remedy_applied by stop_writes
	// ok: true
	// ledger: stop-writes-on-bgsave-error no (was yes) since 2025-01-02T03:04:05Z
	// CONFIG SETs sent: 0
}
