package cli

import (
	"context"
	"fmt"
)

func runDaemon(ctx context.Context, args []string, env Env) int {
	fmt.Fprintln(env.Stderr, "run: not implemented yet")
	return 2
}

func runRestore(ctx context.Context, args []string, env Env) int {
	fmt.Fprintln(env.Stderr, "restore: not implemented yet")
	return 2
}
