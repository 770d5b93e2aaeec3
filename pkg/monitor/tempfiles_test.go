package monitor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// hostWriteFile creates path (and its parents) with content.
func hostWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("mkdir for %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func TestScanTempFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	aofDir := filepath.Join(dir, "appendonlydir")
	procRoot := filepath.Join(root, "proc")
	// pid 100 is alive, pid 200 and 300 are not.
	if err := os.MkdirAll(filepath.Join(procRoot, "100"), 0o755); err != nil {
		t.Fatal(err)
	}

	good := map[string]string{
		"temp-100.rdb":                               "abc",
		"temp-200.rdb":                               "abcdef",
		"temp-1700000000.300.rdb":                    "x",
		"temp-rewriteaof-bg-100.aof":                 "",
		"temp-rewriteaof-200.aof":                    "yy",
		"appendonlydir/temp-appendonly.aof.incr":     "incr",
		"appendonlydir/temp-appendonly.aof.manifest": "m",
	}
	bad := []string{
		"temp-abc.rdb", "temp-1.rdb.bak", "dump.rdb", "temp-01.rdb", "appendonly.aof",
		// AOF temp names only count in the AOF dir, RDB ones only in dir.
		"temp-appendonly.aof.incr", "appendonlydir/temp-5.rdb",
		"appendonlydir/temp-other.aof.incr", "appendonlydir/appendonly.aof.1.base.rdb",
	}
	for name, content := range good {
		hostWriteFile(t, filepath.Join(dir, name), content)
	}
	for _, name := range bad {
		hostWriteFile(t, filepath.Join(dir, name), "bad")
	}
	// A symlink with a temp name points at something precious; a directory with a
	// temp name is not a file. Neither may ever be listed.
	precious := filepath.Join(root, "precious")
	hostWriteFile(t, precious, "do not delete")
	if err := os.Symlink(precious, filepath.Join(dir, "temp-1.rdb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(precious, filepath.Join(aofDir, "temp-other.aof.manifest")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "temp-2.rdb"), 0o755); err != nil {
		t.Fatal(err)
	}

	got, err := ScanTempFiles(dir, aofDir, "", procRoot)
	if err != nil {
		t.Fatalf("ScanTempFiles: %v", err)
	}
	want := []TempFile{
		{Path: filepath.Join(aofDir, "temp-appendonly.aof.incr"), Kind: TempAOFIncr, Size: 4, PID: 0, PIDAlive: Unknown},
		{Path: filepath.Join(aofDir, "temp-appendonly.aof.manifest"), Kind: TempAOFManifest, Size: 1, PID: 0, PIDAlive: Unknown},
		{Path: filepath.Join(dir, "temp-100.rdb"), Kind: TempBgsave, Size: 3, PID: 100, PIDAlive: Yes},
		{Path: filepath.Join(dir, "temp-1700000000.300.rdb"), Kind: TempReplSync, Size: 1, PID: 300, PIDAlive: No},
		{Path: filepath.Join(dir, "temp-200.rdb"), Kind: TempBgsave, Size: 6, PID: 200, PIDAlive: No},
		{Path: filepath.Join(dir, "temp-rewriteaof-200.aof"), Kind: TempRewrite, Size: 2, PID: 200, PIDAlive: No},
		{Path: filepath.Join(dir, "temp-rewriteaof-bg-100.aof"), Kind: TempRewriteBg, Size: 0, PID: 100, PIDAlive: Yes},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(TempFile{}, "ModTime")); diff != "" {
		t.Errorf("ScanTempFiles mismatch (-want +got):\n%s", diff)
	}
	for _, f := range got {
		if f.ModTime.IsZero() {
			t.Errorf("%s: ModTime is zero", f.Path)
		}
	}

	t.Run("custom appendfilename", func(t *testing.T) {
		t.Parallel()
		got, err := ScanTempFiles("", aofDir, "other.aof", procRoot)
		if err != nil {
			t.Fatalf("ScanTempFiles: %v", err)
		}
		want := []TempFile{{Path: filepath.Join(aofDir, "temp-other.aof.incr"), Kind: TempAOFIncr, Size: 3}}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(TempFile{}, "ModTime")); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("appendfilename with a path is refused", func(t *testing.T) {
		t.Parallel()
		got, err := ScanTempFiles("", aofDir, "../x.aof", procRoot)
		if err == nil || len(got) != 0 {
			t.Errorf("ScanTempFiles = %v, %v; want nothing and an error", got, err)
		}
	})
	t.Run("missing aof dir is not an error", func(t *testing.T) {
		t.Parallel()
		if _, err := ScanTempFiles(dir, filepath.Join(root, "nope"), "", procRoot); err != nil {
			t.Errorf("ScanTempFiles: %v", err)
		}
	})
	t.Run("missing dir is an error", func(t *testing.T) {
		t.Parallel()
		_, err := ScanTempFiles(filepath.Join(root, "nope"), "", "", procRoot)
		if err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("ScanTempFiles error = %v, want one naming the dir", err)
		}
	})
}
