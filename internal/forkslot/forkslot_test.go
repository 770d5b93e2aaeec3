package forkslot

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

func TestTwoUsersInOneProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := New(dir, 1, "a"), New(dir, 1, "b")
	if ok, err := a.Take(); !ok || err != nil {
		t.Fatalf("a.Take = %v, %v; want true", ok, err)
	}
	if ok, err := a.Take(); !ok || err != nil {
		t.Fatalf("a.Take again = %v, %v; want true (it holds the slot)", ok, err)
	}
	if ok, err := b.Take(); ok || err != nil {
		t.Fatalf("b.Take = %v, %v; want false: a holds the only slot", ok, err)
	}
	want := fmt.Sprintf("a %d", os.Getpid())
	if v := b.View(); !v.Known || v.Mine || len(v.Others) != 1 || v.Others[0] != want || v.Free() != 0 {
		t.Fatalf("b.View = %+v; want a's slot held by %q", v, want)
	}
	if v := a.View(); !v.Mine || len(v.Others) != 0 || v.Free() != 0 {
		t.Fatalf("a.View = %+v; want its own slot", v)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if v := b.View(); v.Mine || len(v.Others) != 0 || v.Free() != 1 {
		t.Fatalf("b.View after release = %+v; want the slot free", v)
	}
	if ok, err := b.Take(); !ok || err != nil {
		t.Fatalf("b.Take after release = %v, %v; want true", ok, err)
	}
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestTwoSlots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, c := New(dir, 2, "a"), New(dir, 2, "b"), New(dir, 2, "c")
	for _, s := range []*Slots{a, b} {
		if ok, err := s.Take(); !ok || err != nil {
			t.Fatalf("Take = %v, %v", ok, err)
		}
	}
	if ok, _ := c.Take(); ok {
		t.Fatal("a third take succeeded with two slots")
	}
	if v := c.View(); len(v.Others) != 2 || v.Free() != 0 {
		t.Fatalf("c.View = %+v", v)
	}
}

// TestHolderTextSanitized: a slot file's text is written by whichever uid holds
// it and read into findings, logs and status: control characters never pass.
func TestHolderTextSanitized(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := New(dir, 2, "a")
	if ok, err := a.Take(); !ok || err != nil {
		t.Fatalf("Take = %v, %v", ok, err)
	}
	defer a.Release()
	if err := os.WriteFile(dir+"/fork-slot-0", []byte("evil\x1b[2J\nname 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hs, err := Holders(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"evil_[2J_name 1", ""}; hs[0] != want[0] || hs[1] != want[1] {
		t.Fatalf("Holders = %q; want %q", hs, want)
	}
}

func TestSymlinkRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := dir + "/target"
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, dir+"/fork-slot-0"); err != nil {
		t.Fatal(err)
	}
	if ok, err := New(dir, 1, "a").Take(); ok || err == nil {
		t.Fatalf("Take through a symlink = %v, %v; want an error", ok, err)
	}
}

// holderEnv makes the test binary a slot holder in another process; with
// waiterEnv too, a waiter for a slot.
const (
	holderEnv = "FORKSLOT_TEST_HOLD_DIR"
	waiterEnv = "FORKSLOT_TEST_WAIT"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(holderEnv); dir != "" {
		s := New(dir, 1, "other-guardian")
		var ok bool
		var err error
		if os.Getenv(waiterEnv) != "" {
			// A waiter instead: it waits since long ago, and exits without
			// StopWaiting, as a killed guardian would.
			ok, err = true, s.Wait(time.Unix(100, 0))
		} else {
			ok, err = s.Take()
		}
		fmt.Printf("held %v %v\n", ok, err)
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // hold until told
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestOtherProcess is not parallel: starting its subprocess forks this test
// process, and between fork and exec the child holds a copy of every descriptor,
// so a slot another test releases meanwhile stays locked until the exec (seen
// once in eight loaded runs: "b.View after release ... Others:[?]").
func TestOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin := startHolder(t, holderEnv+"="+dir)
	me := New(dir, 1, "me")
	if ok, err := me.Take(); ok || err != nil {
		t.Fatalf("Take while another process holds the slot = %v, %v; want false", ok, err)
	}
	want := fmt.Sprintf("other-guardian %d", cmd.Process.Pid)
	if v := me.View(); len(v.Others) != 1 || v.Others[0] != want {
		t.Fatalf("View = %+v; want %q", v, want)
	}
	if hs, err := Holders(dir, 1); err != nil || len(hs) != 1 || hs[0] != want {
		t.Fatalf("Holders = %q, %v; want [%q]", hs, err, want)
	}
	// The holder exits without releasing: the lock goes with its process.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder: %v", err)
	}
	if ok, err := me.Take(); !ok || err != nil {
		t.Fatalf("Take after the holder exited = %v, %v; want true", ok, err)
	}
	_ = me.Release()
}

// TestWaitersInTurn: instances that wait for a slot are listed to the others,
// oldest first; each sees only who waited longer as ahead of it; a waiter that
// stops waiting is gone from the list and its file removed.
func TestWaitersInTurn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, c := New(dir, 1, "a"), New(dir, 1, "b"), New(dir, 1, "c")
	t1, t2 := time.Unix(1000, 0), time.Unix(2000, 0)
	if err := b.Wait(t2); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(t1); err != nil {
		t.Fatal(err)
	}
	pid := os.Getpid()
	want := []monitor.ForkWaiter{{Holder: fmt.Sprintf("a %d", pid), Since: t1}, {Holder: fmt.Sprintf("b %d", pid), Since: t2}}
	if v := c.View(); !slices.Equal(v.Waiters, want) || !v.Waiting.IsZero() || len(v.Ahead(time.Time{})) != 2 {
		t.Fatalf("c.View = %+v; want waiters %+v, both ahead of a save that does not wait yet", v, want)
	}
	if v := b.View(); !v.Waiting.Equal(t2) || !slices.Equal(v.Ahead(t2), []string{want[0].Holder}) {
		t.Fatalf("b.View = %+v; want a ahead of b", v)
	}
	if v := a.View(); len(v.Ahead(t1)) != 0 {
		t.Fatalf("a.View = %+v; want nobody ahead of a", v)
	}
	// Waiting again since the same time changes nothing; a new since is written.
	if err := a.Wait(t1); err != nil {
		t.Fatal(err)
	}
	a.StopWaiting()
	if v := c.View(); !slices.Equal(v.Waiters, want[1:]) {
		t.Fatalf("c.View after a stopped waiting = %+v; want only b", v)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "fork-wait-*")); len(m) != 1 {
		t.Fatalf("waiter files %q, want b's only", m)
	}
	b.StopWaiting()
	b.StopWaiting() // twice is harmless
	if v := c.View(); len(v.Waiters) != 0 {
		t.Fatalf("c.View = %+v; want no waiters", v)
	}
}

// TestWaiterFilesAreInput: the runtime dir's other files are another uid's
// input: a symlink, a FIFO, garbage and an unlocked file are no waiters; an
// unlocked one older than staleWait (a dead waiter's) is removed, a symlink
// never followed nor removed.
func TestWaiterFilesAreInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("1 evil 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "fork-wait-link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fork-wait-fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"fork-wait-garbage": "not a time\n", "fork-wait-dead": "5 dead 1\n", "fork-wait-young": "6 young 1\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleWait)
	if err := os.Chtimes(filepath.Join(dir, "fork-wait-dead"), old, old); err != nil {
		t.Fatal(err)
	}
	me := New(dir, 1, "me")
	if v := me.View(); !v.Known || len(v.Waiters) != 0 {
		t.Fatalf("View = %+v; want no waiters", v)
	}
	if _, err := os.Lstat(filepath.Join(dir, "fork-wait-dead")); !os.IsNotExist(err) {
		t.Errorf("the dead waiter's file is still there (%v)", err)
	}
	for _, name := range []string{"fork-wait-link", "fork-wait-fifo", "fork-wait-young"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v, want it left alone", name, err)
		}
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "1 evil 1\n" {
		t.Errorf("the symlink's target changed: %q, %v", b, err)
	}
}

// TestWaiterOfAKilledProcess: a waiter in another process is listed while it
// lives; killed (no StopWaiting), its lock goes with it and it is no waiter.
// Not parallel, for the reason TestOtherProcess gives.
func TestWaiterOfAKilledProcess(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHolder(t, holderEnv+"="+dir, waiterEnv+"=1")
	me := New(dir, 1, "me")
	want := monitor.ForkWaiter{Holder: fmt.Sprintf("other-guardian %d", cmd.Process.Pid), Since: time.Unix(100, 0)}
	if v := me.View(); !slices.Equal(v.Waiters, []monitor.ForkWaiter{want}) {
		t.Fatalf("View = %+v; want the other process's waiter %+v", v, want)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if v := me.View(); len(v.Waiters) != 0 {
		t.Fatalf("View after the waiter was killed = %+v; want none", v)
	}
}

// startHolder runs this test binary as a holder (or waiter) in another process
// with env, and returns once it holds; closing stdin lets it exit.
func startHolder(t *testing.T, env ...string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "held true <nil>" {
		t.Fatalf("holder said %q, %v", line, err)
	}
	return cmd, stdin
}

// TestSlotsBeyondMaxConcurrent: a guardian with max_concurrent 2 holds slot 1;
// one with max_concurrent 1 sees that slot as beyond its budget (the two do not
// share one budget), and nothing beyond once it is released.
func TestSlotsBeyondMaxConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := New(dir, 2, "a"), New(dir, 2, "b")
	for _, s := range []*Slots{a, b} {
		if ok, err := s.Take(); !ok || err != nil {
			t.Fatalf("Take = %v, %v", ok, err)
		}
	}
	one := New(dir, 1, "one")
	want := []string{fmt.Sprintf("fork-slot-1 held by b %d", os.Getpid())}
	if v := one.View(); !slices.Equal(v.Beyond, want) || v.Free() != 0 {
		t.Fatalf("View with max_concurrent 1 = %+v; want %q beyond, slot 0 busy", v, want)
	}
	if v := a.View(); len(v.Beyond) != 0 {
		t.Fatalf("View with max_concurrent 2 = %+v; want nothing beyond", v)
	}
	_ = b.Release()
	if v := one.View(); len(v.Beyond) != 0 {
		t.Fatalf("View after the release = %+v; want nothing beyond", v)
	}
	_ = a.Release()
}
