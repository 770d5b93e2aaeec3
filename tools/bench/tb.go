package main

import (
	"fmt"

	"github.com/redis-guardian/redis-guardian/internal/tbscope"
)

// benchT lets the driver use internal/testredis, whose helpers take a testing.TB
// so that they clean up through t.Cleanup.
type benchT = tbscope.Scope

// scenario runs fn with a fresh benchT, runs its cleanups whatever happens and turns
// a Fatal (or a panic) into an error.
func scenario(name string, verbose bool, fn func(t *benchT)) error {
	t := tbscope.New("bench", name, verbose)
	err := tbscope.Try(t, func() { fn(t) })
	if !t.Close() && err == nil {
		err = fmt.Errorf("%s: failed (see errors above)", name)
	}
	return err
}
