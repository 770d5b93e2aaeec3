package main

import "github.com/redis-guardian/redis-guardian/internal/tbscope"

// scope lets the soak use internal/testredis, whose helpers take a testing.TB and
// undo what they did through t.Cleanup. Each fault gets a scope of its own, so
// clearing a fault is closing its scope; the servers live in the run's scope.
type scope = tbscope.Scope

func newScope(name string, verbose bool) *scope { return tbscope.New("soak", name, verbose) }

// try runs fn in t and turns a Fatalf (or a panic) into an error.
func try(t *scope, fn func()) error { return tbscope.Try(t, fn) }
