// Command redis-guardian is a sidecar daemon that keeps Redis writable and healthy
// through persistence and memory trouble. See README.md.
package main

import (
	"context"
	"os"

	"github.com/redis-guardian/redis-guardian/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
}
