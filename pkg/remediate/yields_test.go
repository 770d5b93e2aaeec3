package remediate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestYieldsKept: the yields a guardian keeps are read back by the next one
// (same state dir), and none kept means no file.
func TestYieldsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLedger(t, dir)
	at := time.Date(2026, 12, 6, 18, 57, 31, 0, time.UTC)
	ys := []policy.Yield{{Remedy: policy.RemedyStopWrites, Setting: policy.SettingStopWrites, At: at}}
	if err := l.SaveYields(ys); err != nil {
		t.Fatal(err)
	}
	got, err := l.Yields()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ys, got); diff != "" {
		t.Errorf("yields read back (-want +got):\n%s", diff)
	}
	if err := l.SaveYields(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(YieldsPath(dir, "main")); !os.IsNotExist(err) {
		t.Errorf("no yields kept, but the file is there (%v)", err)
	}
}

// TestYieldsFileIsInput: a yields file is read like the ledger: never through a
// symlink, bounded, and one naming a setting no remedy holds is refused whole,
// with a message naming the file.
func TestYieldsFileIsInput(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		write func(path string) error
		want  string
	}{
		"symlink": {func(p string) error { return os.Symlink("/etc/passwd", p) }, "symbolic link"},
		"corrupt": {func(p string) error { return os.WriteFile(p, []byte("{"), 0o600) }, "corrupt"},
		"too big": {func(p string) error { return os.WriteFile(p, make([]byte, maxYieldsSize+1), 0o600) }, "larger than"},
		"newer":   {func(p string) error { return os.WriteFile(p, []byte(`{"version":2}`), 0o600) }, "version 2"},
		"foreign setting": {func(p string) error {
			return os.WriteFile(p, []byte(`{"version":1,"yields":[{"remedy":"stop_writes","setting":"requirepass","at":"2026-12-06T18:57:31Z"}]}`), 0o600)
		}, "does not hold setting"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "main.yields.json")
			if err := tc.write(path); err != nil {
				t.Fatal(err)
			}
			ys, err := readYields(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("readYields = %+v, %v; want an error naming %s and saying %q", ys, err, path, tc.want)
			}
		})
	}
}

// FuzzDecodeYields: a yields file is input from a directory another uid may
// write. Whatever its bytes, decodeYields returns an error naming the file, or
// yields each naming a setting its remedy holds; it never panics.
func FuzzDecodeYields(f *testing.F) {
	at := time.Date(2026, 12, 6, 18, 57, 31, 0, time.UTC)
	dir := f.TempDir()
	l, err := OpenFileLedger(dir, "main")
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	if err := l.SaveYields([]policy.Yield{
		{Remedy: policy.RemedyStopWrites, Setting: policy.SettingStopWrites, At: at},
		{Remedy: policy.RemedyForkBudget, Setting: policy.SettingSave, At: at},
	}); err != nil {
		f.Fatal(err)
	}
	real, err := os.ReadFile(YieldsPath(dir, "main"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add([]byte(`{"version":1,"yields":[]}`))
	f.Add([]byte(`{"version":1,"yields":[{"remedy":"stop_writes","setting":"requirepass","at":"x"}]}`))
	f.Add([]byte(`{"version":1e400}`))
	const path = "/var/lib/redis-guardian/main.yields.json"
	f.Fuzz(func(t *testing.T, b []byte) {
		ys, err := decodeYields(path, b)
		if err != nil {
			if !strings.Contains(err.Error(), path) || len(err.Error()) > len(path)+1024 {
				t.Fatalf("error %q does not name the file or is unbounded", err)
			}
			return
		}
		for _, y := range ys {
			if !policy.Holds(y.Remedy, y.Setting) {
				t.Fatalf("decoded %+v, a setting its remedy does not hold", y)
			}
		}
	})
}
