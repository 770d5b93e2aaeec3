package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// redisLog carries go-redis's own messages ("redis: ... failed to dial after 5
// attempts") into the guardian's structured log, and so into the journal, instead
// of the library's default of plain lines on stderr.
type redisLog struct{ log *zap.Logger }

// Printf logs one go-redis message as a warning: the library logs only trouble.
func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	r.log.Warn(strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")))
}

// routeRedisLog sends go-redis's messages to log. go-redis has one logger for the
// whole process, so this is set once, by the command that owns the process.
func routeRedisLog(log *zap.Logger) { redis.SetLogger(redisLog{log: log.Named("go-redis")}) }
