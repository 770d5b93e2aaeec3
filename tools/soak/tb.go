package main

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// scope lets the soak use internal/testredis, whose helpers take a testing.TB and
// undo what they did through t.Cleanup. Each fault gets a scope of its own, so
// clearing a fault is running its scope's cleanups; the servers live in the run's
// scope. testing.TB cannot be implemented outside package testing except by
// embedding it: the embedded TB stays nil and every method testredis calls is
// overridden below (tools/bench does the same).
type scope struct {
	testing.TB
	name    string
	verbose bool

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// fatal is what Fatalf panics with, to end an injection like FailNow ends a test.
type fatal struct{ msg string }

func newScope(name string, verbose bool) *scope { return &scope{name: name, verbose: verbose} }

func (t *scope) Helper()      {}
func (t *scope) Name() string { return t.name }
func (t *scope) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}
func (t *scope) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}
func (t *scope) Logf(format string, args ...any) {
	if t.verbose {
		fmt.Fprintf(os.Stderr, "soak: %s: %s\n", t.name, fmt.Sprintf(format, args...))
	}
}
func (t *scope) Log(args ...any) { t.Logf("%s", fmt.Sprint(args...)) }
func (t *scope) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	fmt.Fprintf(os.Stderr, "soak: %s: error: %s\n", t.name, fmt.Sprintf(format, args...))
}
func (t *scope) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }
func (t *scope) Fatalf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	panic(fatal{fmt.Sprintf(format, args...)})
}
func (t *scope) Fatal(args ...any)                { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *scope) FailNow()                         { t.Fatalf("FailNow") }
func (t *scope) Skipf(format string, args ...any) { t.Fatalf("cannot run: "+format, args...) }
func (t *scope) Skip(args ...any)                 { t.Fatalf("cannot run: %s", fmt.Sprint(args...)) }
func (t *scope) Setenv(key, _ string)             { t.Fatalf("Setenv(%s) is not supported by the soak", key) }
func (t *scope) TempDir() string {
	d, err := os.MkdirTemp("", "rg-soak-*")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// close runs the registered cleanups last-in first-out, as testing does, and
// reports whether all of them went without an error.
func (t *scope) close() bool {
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			failed := t.failed
			t.mu.Unlock()
			return !failed
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("cleanup: %v", r)
				}
			}()
			f()
		}()
	}
}

// try runs fn in t and turns a Fatalf (or a panic) into an error.
func try(t *scope, fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(fatal); ok {
				err = fmt.Errorf("%s: %s", t.name, f.msg)
				return
			}
			err = fmt.Errorf("%s: panic: %v", t.name, r)
		}
	}()
	fn()
	return nil
}
