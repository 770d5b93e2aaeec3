package remediate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

var when = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func change(setting, original, value string) Change {
	return Change{Instance: "main", Addr: "127.0.0.1:6379", Setting: setting, Original: original, Value: value,
		Remedy: "stop_writes", Reason: "misconf_rdb", Time: when}
}

func openLedger(t *testing.T, dir string) *FileLedger {
	t.Helper()
	l, err := OpenFileLedger(dir, "main")
	if err != nil {
		t.Fatalf("OpenFileLedger: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// checkFile asserts the ledger file is valid JSON holding exactly want.
func checkFile(t *testing.T, path string, want []Change) {
	t.Helper()
	b, err := os.ReadFile(path)
	if len(want) == 0 {
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("empty ledger: file still there (err %v)", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("read ledger: %v", err)
	}
	var f ledgerFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("ledger is not valid JSON: %v\n%s", err, b)
	}
	if f.Version != 1 {
		t.Errorf("version %d, want 1", f.Version)
	}
	if diff := cmp.Diff(want, f.Changes); diff != "" {
		t.Errorf("ledger file (-want +got):\n%s", diff)
	}
}

func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

func TestFileLedgerRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state") // created by OpenFileLedger
	l := openLedger(t, dir)
	if want := LedgerPath(dir, "main"); l.Path() != want {
		t.Errorf("Path() = %s, want %s", l.Path(), want)
	}
	if got := l.All(); len(got) != 0 {
		t.Fatalf("new ledger holds %+v", got)
	}
	sw := change("stop-writes-on-bgsave-error", "yes", "no")
	rw := change("auto-aof-rewrite-percentage", "100", "0")
	rw.Remedy = "rewrite_deferral"

	sw2 := sw
	sw2.Reason = "snapshot_wont_fit"
	steps := []struct {
		name string
		op   func(l *FileLedger) error
		want []Change
	}{
		{"record", func(l *FileLedger) error { return l.Record(sw) }, []Change{sw}},
		{"record another", func(l *FileLedger) error { return l.Record(rw) }, []Change{rw, sw}},
		{"replace", func(l *FileLedger) error { return l.Record(sw2) }, []Change{rw, sw2}},
		{"remove unknown", func(l *FileLedger) error { return l.Remove("maxmemory") }, []Change{rw, sw2}},
		{"remove", func(l *FileLedger) error { return l.Remove(rw.Setting) }, []Change{sw2}},
		{"remove last", func(l *FileLedger) error { return l.Remove(sw.Setting) }, nil},
	}
	for _, s := range steps {
		if err := s.op(l); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := s.want
		if diff := cmp.Diff(want, l.All(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: All (-want +got):\n%s", s.name, diff)
		}
		checkFile(t, l.Path(), want)
		// A restart sees the same (read without the lock, which l holds).
		again := &FileLedger{path: l.Path(), changes: map[string]Change{}}
		if err := again.load(); err != nil {
			t.Fatalf("%s: reload: %v", s.name, err)
		}
		if diff := cmp.Diff(want, again.All(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: after reopen (-want +got):\n%s", s.name, diff)
		}
		for _, c := range want {
			got, ok := again.Get(c.Setting)
			if !ok || got != c {
				t.Errorf("%s: Get(%s) after reopen = %+v, %v", s.name, c.Setting, got, ok)
			}
		}
		noTempFiles(t, dir)
	}
	if _, ok := l.Get(sw.Setting); ok {
		t.Error("Get finds a removed change")
	}
}

func TestFileLedgerManyOpsLeaveNoTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLedger(t, dir)
	for i := range 100 {
		c := change(fmt.Sprintf("setting-%d", i%7), "a", fmt.Sprint(i))
		if err := l.Record(c); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := l.Remove(fmt.Sprintf("setting-%d", (i+1)%7)); err != nil {
				t.Fatal(err)
			}
		}
	}
	noTempFiles(t, dir)
	checkFile(t, l.Path(), l.All())
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"main.ledger.json", "main.lock", "main.reserve"}; !slices.Equal(names, want) {
		t.Errorf("state dir holds %q, want only %q", names, want)
	}
}

func TestOpenFileLedgerRefusesBadFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		content string
		wantErr string
	}{
		{"corrupt", `{"version": 1, "changes": [{"setting": "stop-wr`, "corrupt"},
		{"not json", "hello\n", "corrupt"},
		{"unknown version", `{"version": 2, "changes": []}`, "version 2"},
		{"no version", `{"changes": []}`, "version 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := LedgerPath(dir, "main")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			st0, _ := os.Stat(path)
			l, err := OpenFileLedger(dir, "main")
			if err == nil {
				t.Fatalf("OpenFileLedger succeeded with %+v", l.All())
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not name %s and %q", err, path, tc.wantErr)
			}
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatalf("the ledger file is gone: %v", rerr)
			}
			if !bytes.Equal(b, []byte(tc.content)) {
				t.Errorf("the ledger file was modified: %q", b)
			}
			if st1, _ := os.Stat(path); !st1.ModTime().Equal(st0.ModTime()) {
				t.Error("the ledger file was rewritten")
			}
		})
	}
}

func TestOpenFileLedgerStateDirIsAFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileLedger(filepath.Join(file, "state"), "main"); err == nil {
		t.Error("OpenFileLedger under a regular file succeeded")
	}
}

// breakDir replaces the state dir with a regular file, so every write fails even
// for root (chmod does not stop root).
func breakDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFileLedgerFailedWriteKeepsMemory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	l := openLedger(t, dir)
	sw := change("stop-writes-on-bgsave-error", "yes", "no")
	if err := l.Record(sw); err != nil {
		t.Fatal(err)
	}
	breakDir(t, dir)

	// A new setting is not held when it could not be recorded.
	rw := change("auto-aof-rewrite-percentage", "100", "0")
	if err := l.Record(rw); err == nil {
		t.Fatal("Record succeeded without a state dir")
	}
	// A replacement keeps the old value.
	changed := sw
	changed.Value = "maybe"
	if err := l.Record(changed); err == nil {
		t.Fatal("Record (replace) succeeded without a state dir")
	}
	// A removal keeps the entry.
	if err := l.Remove(sw.Setting); err == nil {
		t.Fatal("Remove succeeded without a state dir")
	}
	if diff := cmp.Diff([]Change{sw}, l.All()); diff != "" {
		t.Errorf("in-memory ledger changed by failed writes (-want +got):\n%s", diff)
	}
}

func TestMemLedger(t *testing.T) {
	t.Parallel()
	l := NewMemLedger()
	if len(l.All()) != 0 {
		t.Fatal("new MemLedger is not empty")
	}
	sw := change("stop-writes-on-bgsave-error", "yes", "no")
	rw := change("auto-aof-rewrite-percentage", "100", "0")
	for _, c := range []Change{sw, rw} {
		if err := l.Record(c); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]Change{rw, sw}, l.All()); diff != "" {
		t.Errorf("All (-want +got):\n%s", diff)
	}
	if got, ok := l.Get(sw.Setting); !ok || got != sw {
		t.Errorf("Get = %+v, %v", got, ok)
	}
	if err := l.Remove(sw.Setting); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove("unknown"); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Get(sw.Setting); ok {
		t.Error("Get finds a removed change")
	}
	if diff := cmp.Diff([]Change{rw}, l.All()); diff != "" {
		t.Errorf("All after Remove (-want +got):\n%s", diff)
	}
}

// TestFileLedgerWrittenByRootKeepsTheDirOwner: root running `restore` must not
// leave a ledger the service user (the state dir's owner) can no longer read.
func TestFileLedgerWrittenByRootKeepsTheDirOwner(t *testing.T) {
	t.Parallel()
	dir, uid, gid := testredis.RedisOwnedDir(t)
	l, err := OpenFileLedger(dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Change{Setting: "stop-writes-on-bgsave-error", Original: "yes", Value: "no"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(LedgerPath(dir, "main"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("ledger owned by %d:%d, want the state dir's %d:%d", st.Uid, st.Gid, uid, gid)
	}
}

// TestOpenFileLedgerReadOnlyStateDir: a state dir that cannot be written is said at
// open (ErrStateDir), not at the moment a change must be recorded. A read-only
// bind mount refuses root too.
func TestOpenFileLedgerReadOnlyStateDir(t *testing.T) {
	testredis.RequireRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err != nil {
		t.Fatalf("bind mount %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v: %s", dir, err, out)
	}
	l, err := OpenFileLedger(dir, "main")
	if err == nil {
		_ = l.Close()
		t.Fatal("OpenFileLedger on a read-only state dir succeeded")
	}
	if !errors.Is(err, ErrStateDir) || !strings.Contains(err.Error(), "read-only file system") {
		t.Errorf("error = %v, want ErrStateDir naming the read-only file system", err)
	}
}

// TestOpenFileLedgerRemovesStaleTemps: a temp file a SIGKILLed writer left is
// removed when the ledger is opened; another instance's is left alone.
func TestOpenFileLedgerRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mine := filepath.Join(dir, ".main.ledger.json-123.tmp")
	theirs := filepath.Join(dir, ".other.ledger.json-456.tmp")
	for _, p := range []string{mine, theirs} {
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	openLedger(t, dir)
	if _, err := os.Stat(mine); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale temp file %s is still there (%v)", mine, err)
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("another instance's temp file was touched: %v", err)
	}
}

// TestFileLedgerStage: a staged change is in the file for every reader before its
// sync runs, the sync succeeds after a newer write replaced the file (or removed
// it), and a stage that fails leaves the ledger as it was.
func TestFileLedgerStage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	l := openLedger(t, dir)
	sw := change("stop-writes-on-bgsave-error", "yes", "no")
	sync, err := l.Stage(sw)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, l.Path(), []Change{sw})
	noTempFiles(t, dir)
	if err := sync(); err != nil {
		t.Errorf("sync: %v", err)
	}

	rw := change("auto-aof-rewrite-percentage", "100", "0")
	sync, err = l.Stage(rw)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(rw.Setting); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(sw.Setting); err != nil {
		t.Fatal(err)
	}
	if err := sync(); err != nil {
		t.Errorf("sync after the file was removed: %v", err)
	}

	if err := l.Record(sw); err != nil {
		t.Fatal(err)
	}
	breakDir(t, dir)
	if _, err := l.Stage(rw); err == nil {
		t.Fatal("Stage succeeded without a state dir")
	}
	if diff := cmp.Diff([]Change{sw}, l.All()); diff != "" {
		t.Errorf("in-memory ledger changed by a failed stage (-want +got):\n%s", diff)
	}
}
