package cli

import (
	"context"
	"fmt"

	"github.com/redis-guardian/redis-guardian/internal/supervisor"
)

func runRestore(ctx context.Context, args []string, env Env) int {
	var c commonFlags
	fs := newFlagSet("restore", env.Stderr, &c, true)
	fs.StringVar(&c.stateDir, "state-dir", "", "where the ledger of held changes is kept (default /var/lib/redis-guardian)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err, 2)
	}
	log, _, err := newLogger(env, "info", logConsole)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 2
	}
	routeRedisLog(log)
	cfg, err := loadConfig(c, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%v\n", err)
		return 2
	}
	total, err := supervisor.Restore(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(env.Stderr, "restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "restore: %d held change(s) processed; the ledger is empty\n", total)
	return 0
}
