package remediate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

type fileState struct {
	content []byte
	uid     uint32
	mode    os.FileMode
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return fileState{content: b, uid: fi.Sys().(*syscall.Stat_t).Uid, mode: fi.Mode()}
}

// TestPlantedFilesNeverFollowed is the review's first hole: the redis uid owns the
// state dir and root runs restore. A link (or a hard link, or a FIFO) planted as
// <inst>.lock, .reserve or .ledger.json must never become root's open, write or
// chown: OpenFileLedger refuses it (ErrUntrusted) and the target is unchanged.
func TestPlantedFilesNeverFollowed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, dir, target string)
	}{
		{"lock symlink", func(t *testing.T, dir, target string) { symlink(t, target, filepath.Join(dir, "main.lock")) }},
		{"reserve symlink", func(t *testing.T, dir, target string) { symlink(t, target, filepath.Join(dir, "main.reserve")) }},
		{"ledger symlink", func(t *testing.T, dir, target string) { symlink(t, target, LedgerPath(dir, "main")) }},
		{"lock hard link", func(t *testing.T, dir, target string) {
			if err := os.Link(target, filepath.Join(dir, "main.lock")); err != nil {
				t.Fatal(err)
			}
		}},
		{"reserve hard link", func(t *testing.T, dir, target string) {
			if err := os.Link(target, filepath.Join(dir, "main.reserve")); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, _, _ := testredis.RedisOwnedDir(t)
			// root's file, beside the state dir (same file system, for the hard link).
			target := filepath.Join(filepath.Dir(dir), "root-secret")
			if err := os.WriteFile(target, []byte("root only\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := stateOf(t, target)
			tc.plant(t, dir, target)
			l, err := OpenFileLedger(dir, "main")
			if err == nil {
				_ = l.Close()
				t.Fatal("OpenFileLedger used the planted file")
			}
			if !errors.Is(err, ErrUntrusted) {
				t.Errorf("error %v is not ErrUntrusted", err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the file in %s", err, dir)
			}
			after := stateOf(t, target)
			if after.uid != before.uid || after.mode != before.mode || !bytes.Equal(after.content, before.content) {
				t.Errorf("root's file changed: before uid %d mode %v %q, after uid %d mode %v %q",
					before.uid, before.mode, before.content, after.uid, after.mode, after.content)
			}
		})
	}
}

// TestPlantedFIFONeverHangs: a FIFO planted as the lock or the reserve is refused
// at once, not waited on.
func TestPlantedFIFONeverHangs(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"main.lock", "main.reserve", "main.ledger.json"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, _, _ := testredis.RedisOwnedDir(t)
			if err := syscall.Mkfifo(filepath.Join(dir, name), 0o666); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				l, err := OpenFileLedger(dir, "main")
				if err == nil {
					_ = l.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrUntrusted) {
					t.Errorf("OpenFileLedger with a FIFO as %s: %v, want ErrUntrusted", name, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("OpenFileLedger hangs on a FIFO as %s", name)
			}
		})
	}
}

// TestChownOnlyWhatItMade: root's restore gives the files it creates the state
// dir's owner, and leaves the owner of files that were there alone.
func TestChownOnlyWhatItMade(t *testing.T) {
	t.Parallel()
	dir, uid, _ := testredis.RedisOwnedDir(t)
	l, err := OpenFileLedger(dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	for _, name := range []string{"main.lock", "main.reserve"} {
		if st := stateOf(t, filepath.Join(dir, name)); int(st.uid) != uid {
			t.Errorf("%s made by root is owned by %d, want the state dir's %d", name, st.uid, uid)
		}
	}
	// The service's own files, written by redis: opened again by root, kept as they are.
	l, err = OpenFileLedger(dir, "main")
	if err != nil {
		t.Fatalf("reopen over the service's own files: %v", err)
	}
	_ = l.Close()
}

// TestForgedLedgerEntryRefused is the review's third hole: a ledger entry that no
// remedy makes (requirepass, appendonly, save) is refused at load, with a message
// naming the file and the entry, and the file is left as it is.
func TestForgedLedgerEntryRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, entry, want string }{
		{"requirepass", `{"setting":"requirepass","original":"attacker","value":"","remedy":"stop_writes"}`, `"requirepass"`},
		{"appendonly", `{"setting":"appendonly","original":"no","value":"yes","remedy":"stop_writes"}`, `"appendonly"`},
		{"no remedy", `{"setting":"stop-writes-on-bgsave-error","original":"yes","value":"no"}`, "no remedy is named"},
		{"bad original", `{"setting":"auto-aof-rewrite-percentage","original":"100 x","value":"0","remedy":"rewrite_retry"}`, "original"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := LedgerPath(dir, "main")
			content := `{"version":1,"changes":[` + tc.entry + `]}`
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := OpenFileLedger(dir, "main")
			if err == nil {
				_ = l.Close()
				t.Fatalf("OpenFileLedger accepted %s", tc.entry)
			}
			if !errors.Is(err, ErrLedgerRefused) || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want ErrLedgerRefused naming %s, entry 1 and %s", err, path, tc.want)
			}
			if _, err := ReadLedger(path); !errors.Is(err, ErrLedgerRefused) {
				t.Errorf("ReadLedger (status): %v, want ErrLedgerRefused", err)
			}
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Errorf("the ledger file was changed: %q", b)
			}
		})
	}
}

// TestLedgerTooLarge: a ledger is read only up to a bound.
func TestLedgerTooLarge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := LedgerPath(dir, "main")
	big := `{"version":1,"changes":[],"pad":"` + strings.Repeat("x", maxLedgerSize) + `"}`
	if err := os.WriteFile(path, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLedger(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("ReadLedger of %d bytes: %v, want a size error", len(big), err)
	}
}

// TestInsecureStateDir: a state dir or ledger writable by group or others is said.
func TestInsecureStateDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	l := openLedger(t, dir)
	if err := l.Insecure(); err != nil {
		t.Errorf("mode 0750: %v, want nil", err)
	}
	_ = l.Close()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	l = openLedger(t, dir)
	if err := l.Insecure(); err == nil || !strings.Contains(err.Error(), "0777") {
		t.Errorf("mode 0777: %v, want an error naming the mode", err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
