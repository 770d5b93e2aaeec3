package main

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// benchT lets the driver use internal/testredis, whose helpers take a testing.TB so
// that tests clean up through t.Cleanup. testing.TB cannot be implemented outside
// package testing except by embedding it; the embedded TB stays nil and every method
// testredis calls is overridden below (any other one would panic, and scenario turns
// that into an error like a Fatal).
type benchT struct {
	testing.TB
	name string

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	verbose  bool
}

// fatal is what Fatal panics with, to end a scenario like FailNow ends a test.
type fatal struct{ msg string }

func (t *benchT) Helper()      {}
func (t *benchT) Name() string { return t.name }
func (t *benchT) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}
func (t *benchT) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}
func (t *benchT) Logf(format string, args ...any) {
	if t.verbose {
		fmt.Fprintf(os.Stderr, "bench: %s: %s\n", t.name, fmt.Sprintf(format, args...))
	}
}
func (t *benchT) Log(args ...any) { t.Logf("%s", fmt.Sprint(args...)) }
func (t *benchT) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	fmt.Fprintf(os.Stderr, "bench: %s: error: %s\n", t.name, fmt.Sprintf(format, args...))
}
func (t *benchT) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }
func (t *benchT) Fatalf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	panic(fatal{fmt.Sprintf(format, args...)})
}
func (t *benchT) Fatal(args ...any)                { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *benchT) FailNow()                         { t.Fatalf("FailNow") }
func (t *benchT) Skipf(format string, args ...any) { t.Fatalf("cannot run: "+format, args...) }
func (t *benchT) Skip(args ...any)                 { t.Fatalf("cannot run: %s", fmt.Sprint(args...)) }
func (t *benchT) TempDir() string                  { return t.tempDir() }
func (t *benchT) Setenv(key, value string) {
	t.Fatalf("Setenv(%s) is not supported by the bench driver", key)
}
func (t *benchT) tempDir() string {
	d, err := os.MkdirTemp("", "rg-bench-*")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// runCleanups runs the registered cleanups last-in first-out, as testing does.
func (t *benchT) runCleanups() {
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					fmt.Fprintf(os.Stderr, "bench: %s: cleanup: %v\n", t.name, r)
				}
			}()
			f()
		}()
	}
}

// scenario runs fn with a fresh benchT, runs its cleanups whatever happens and turns
// a Fatal (or a panic) into an error.
func scenario(name string, verbose bool, fn func(t *benchT)) (err error) {
	t := &benchT{name: name, verbose: verbose}
	defer t.runCleanups()
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(fatal); ok {
				err = fmt.Errorf("%s: %s", name, f.msg)
				return
			}
			err = fmt.Errorf("%s: panic: %v", name, r)
		}
	}()
	fn(t)
	if t.Failed() {
		return fmt.Errorf("%s: failed (see errors above)", name)
	}
	return nil
}
