package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestStderrIsJournal(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	match := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	for js, want := range map[string]bool{match: true, "": false, "1:2": false, "garbage": false} {
		env := Env{Stderr: f, Getenv: func(k string) string {
			if k == "JOURNAL_STREAM" {
				return js
			}
			return ""
		}}
		if got := stderrIsJournal(env); got != want {
			t.Errorf("JOURNAL_STREAM=%q: stderrIsJournal = %v, want %v", js, got, want)
		}
	}
	// Not a file at all (a test buffer): never the journal.
	if stderrIsJournal(Env{Stderr: &bytes.Buffer{}, Getenv: func(string) string { return match }}) {
		t.Error("a bytes.Buffer was taken for the journal")
	}
}

func TestRunRejectsBadLogFormat(t *testing.T) {
	t.Parallel()
	// errb becomes go-redis's process-wide log output once run gets that far
	// (the second call): another test's background dial may write to it.
	var out, errb syncOut
	code := Run(context.Background(), []string{"run", "--log-format", "xml", "--addr", "/nonexistent.sock"}, Env{Stdout: &out, Stderr: &errb})
	if code != 2 || !strings.Contains(errb.String(), `--log-format: "xml" is not one of auto, journal, console, json`) {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = Run(context.Background(), []string{"run", "--metrics-listen", ":9", "--addr", "/nonexistent.sock"}, Env{Stdout: &out, Stderr: &errb})
	if code != 2 || !strings.Contains(errb.String(), "--metrics-listen") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// syncOut is a Run output that takes concurrent writes.
type syncOut struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncOut) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncOut) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncOut) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
