package cli

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestRedisLog: a go-redis message becomes one structured warning, without the
// library's "redis: " prefix.
func TestRedisLog(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	redisLog{log: zap.New(core).Named("go-redis")}.Printf(context.Background(), "redis: %s:%d: %s", "pool.go", 770, "failed to dial after 5 attempts")
	all := logs.All()
	if len(all) != 1 || all[0].Level != zapcore.WarnLevel || all[0].Message != "pool.go:770: failed to dial after 5 attempts" || all[0].LoggerName != "go-redis" {
		t.Errorf("entries = %+v, want one warning from go-redis without the prefix", all)
	}
}
