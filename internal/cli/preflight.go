package cli

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/preflight"
)

// runPreflight checks the AOF a server is about to load (before it starts, from
// redis-guardian-preflight.service). Exit 0: valid, nothing to check, or fixed; 1:
// damaged and left as it is; 2: bad usage or the check could not run.
func runPreflight(ctx context.Context, args []string, env Env) int {
	var c commonFlags
	fs := newFlagSet("preflight", env.Stderr, &c, false)
	redisConf := fs.String("redis-conf", "/etc/redis/redis.conf", "the server's config file (dir, appendonly, appenddirname, appendfilename)")
	checker := fs.String("check-aof", "", "redis-check-aof or valkey-check-aof (default: whichever is on PATH)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err, 2)
	}
	log, _, err := newLogger(env, "info", logAuto)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	pf := config.Default().Preflight
	if c.path != "" || fileExists(config.DefaultPath) {
		cfg, err := loadConfig(c, env.Stderr)
		if err != nil {
			fmt.Fprintf(env.Stderr, "%v\n", err)
			return 2
		}
		pf = cfg.Preflight
	}
	r, err := preflight.Run(ctx, preflight.Options{RedisConf: *redisConf, CheckAOF: *checker, Fix: pf.FixTruncatedTail, MaxTruncate: pf.MaxTruncateBytes, Now: env.Now})
	if err != nil {
		log.Error("preflight: the check could not run", zap.String("redis_conf", *redisConf), zap.Error(err))
		return 2
	}
	switch {
	case r.Checked == "":
		log.Info("preflight: no append-only file to check", zap.String("redis_conf", *redisConf))
	case r.Bad == "":
		log.Info("preflight: the append-only files are valid", zap.String("file", r.Checked))
	case r.Fixed:
		log.Warn(fmt.Sprintf("preflight: cut the torn tail of %s at byte %d (%d bytes of a write cut short); the original is kept as %s", r.Bad, r.ValidUpTo, r.Loss, r.Backup),
			zap.String("file", r.Bad), zap.Int64("offset", r.ValidUpTo), zap.Int64("lost_bytes", r.Loss), zap.String("backup", r.Backup))
	default:
		kind := "is damaged in the middle"
		if r.TornTail {
			kind = "has a torn tail"
		}
		log.Error(fmt.Sprintf("preflight: %s %s: valid up to byte %d, %d bytes after it; the server will refuse to load it. Not changed: %s. redis-check-aof --fix would cut everything after byte %d",
			r.Bad, kind, r.ValidUpTo, r.Loss, r.Why, r.ValidUpTo),
			zap.String("file", r.Bad), zap.Int64("offset", r.ValidUpTo), zap.Int64("lost_bytes", r.Loss), zap.Bool("torn_tail", r.TornTail))
		return 1
	}
	return 0
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
