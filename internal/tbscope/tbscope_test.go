package tbscope

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestScope: cleanups run last-in first-out at Close, even after a Fatalf, which
// Try returns as an error; a panic in a cleanup fails the scope; TempDir is
// removed at Close.
func TestScope(t *testing.T) {
	s := New("test", "unit", false)
	var order []string
	dir := s.TempDir()
	s.Cleanup(func() { order = append(order, "first") })
	s.Cleanup(func() { order = append(order, "second") })
	err := Try(s, func() {
		s.Fatalf("boom %d", 1)
		order = append(order, "after fatal")
	})
	if err == nil || err.Error() != "unit: boom 1" {
		t.Errorf("Try = %v, want the Fatalf message", err)
	}
	if s.Close() {
		t.Error("Close after a Fatalf reported no failure")
	}
	if strings.Join(order, ",") != "second,first" {
		t.Errorf("order %v, want cleanups last-in first-out and nothing after Fatalf", order)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("TempDir %s after Close: %v, want it removed", dir, err)
	}

	ok := New("test", "ok", false)
	ok.Cleanup(func() {})
	if err := Try(ok, func() {}); err != nil || !ok.Close() {
		t.Errorf("a scope without failure: Try %v, Close %v", err, ok.Close())
	}
	bad := New("test", "cleanup", false)
	bad.Cleanup(func() { panic("oops") })
	if bad.Close() {
		t.Error("a cleanup that panicked left the scope ok")
	}
	if err := Try(New("test", "p", false), func() { panic("raw") }); err == nil || !strings.Contains(err.Error(), "panic: raw") {
		t.Errorf("Try of a panic = %v", err)
	}
}
