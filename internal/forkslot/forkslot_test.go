package forkslot

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
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

// holderEnv makes the test binary a slot holder in another process.
const holderEnv = "FORKSLOT_TEST_HOLD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holderEnv); dir != "" {
		s := New(dir, 1, "other-guardian")
		ok, err := s.Take()
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
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+dir)
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
