// Package tbscope is a testing.TB for the programs that drive internal/testredis
// outside a test (tools/bench, tools/soak): testredis's helpers take a
// testing.TB so that they clean up through t.Cleanup.
//
// testing.TB cannot be implemented outside package testing except by
// embedding it; the embedded TB stays nil and every method testredis calls is
// overridden here (any other would panic, and Try turns that into an error
// like a Fatal).
package tbscope

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// Scope is one unit of work's testing.TB: its cleanups, and whether it failed.
type Scope struct {
	testing.TB
	prefix, name string
	verbose      bool

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// fatal is what Fatalf panics with, to end the work like FailNow ends a test.
type fatal struct{ msg string }

// New returns a scope named name; prefix names the program in what it prints
// to stderr (errors always, Logf when verbose).
func New(prefix, name string, verbose bool) *Scope {
	return &Scope{prefix: prefix, name: name, verbose: verbose}
}

// Helper does nothing: there is no test log to attribute lines to.
func (t *Scope) Helper() {}

// Name is the scope's name.
func (t *Scope) Name() string { return t.name }

// Cleanup registers f to run at Close, last-in first-out.
func (t *Scope) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}

// Failed reports whether an Error or Fatal was reported.
func (t *Scope) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// Logf prints when verbose.
func (t *Scope) Logf(format string, args ...any) {
	if t.verbose {
		fmt.Fprintf(os.Stderr, "%s: %s: %s\n", t.prefix, t.name, fmt.Sprintf(format, args...))
	}
}

// Log prints when verbose.
func (t *Scope) Log(args ...any) { t.Logf("%s", fmt.Sprint(args...)) }

// Errorf marks the scope failed and prints the error.
func (t *Scope) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	fmt.Fprintf(os.Stderr, "%s: %s: error: %s\n", t.prefix, t.name, fmt.Sprintf(format, args...))
}

// Error is Errorf with Sprint's formatting.
func (t *Scope) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

// Fatalf marks the scope failed and ends the work (Try returns the message).
func (t *Scope) Fatalf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	panic(fatal{fmt.Sprintf(format, args...)})
}

// Fatal is Fatalf with Sprint's formatting.
func (t *Scope) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

// FailNow ends the work as failed.
func (t *Scope) FailNow() { t.Fatalf("FailNow") }

// Skipf ends the work: outside a test there is nobody to skip for.
func (t *Scope) Skipf(format string, args ...any) { t.Fatalf("cannot run: "+format, args...) }

// Skip is Skipf with Sprint's formatting.
func (t *Scope) Skip(args ...any) { t.Fatalf("cannot run: %s", fmt.Sprint(args...)) }

// Setenv is refused: the programs run several scopes at once in one process.
func (t *Scope) Setenv(key, _ string) {
	t.Fatalf("Setenv(%s) is not supported outside a test", key)
}

// TempDir makes a directory removed at Close.
func (t *Scope) TempDir() string {
	d, err := os.MkdirTemp("", "rg-"+t.prefix+"-*")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// Close runs the registered cleanups last-in first-out, as testing does (a
// cleanup that panics is reported as an error), and reports whether the scope
// went without an error.
func (t *Scope) Close() bool {
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

// Try runs fn in t and turns a Fatalf (or a panic) into an error.
func Try(t *Scope, fn func()) (err error) {
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
