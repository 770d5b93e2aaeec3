package events_test

import (
	"bufio"
	"errors"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPkgImportsNoInternal keeps pkg/ a library: a package there that imports
// anything under the module's internal/ exports what code outside the module
// cannot use (Go refuses the import), as remediate.Executor.OnEvent once did.
//
// Checking every package's direct imports covers the transitive ones: a chain
// from pkg/ into internal/ would have to pass through another package of this
// module (another modules' packages cannot import our internal/), and that is a
// pkg/ package checked here, or an internal/ one caught. Test files may import
// internal/ (testredis): they are not part of the library.
func TestPkgImportsNoInternal(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	internal := modulePath(t, filepath.Join(root, "go.mod")) + "/internal"
	checked := 0
	err := filepath.WalkDir(filepath.Join(root, "pkg"), func(dir string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(dir, 0)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil
		}
		if err != nil {
			return err
		}
		checked++
		for _, imp := range p.Imports {
			if imp == internal || strings.HasPrefix(imp, internal+"/") {
				t.Errorf("%s imports %s: pkg/ must import nothing from internal/ (move what it needs under pkg/)", dir, imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk pkg/: %v", err)
	}
	if checked < 4 {
		t.Fatalf("checked %d packages under pkg/, want at least monitor, policy, remediate and events", checked)
	}
}

// modulePath reads the module's path from go.mod.
func modulePath(t *testing.T, gomod string) string {
	t.Helper()
	f, err := os.Open(gomod)
	if err != nil {
		t.Fatalf("read the module path: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(mod), `"`)
		}
	}
	t.Fatalf("%s names no module", gomod)
	return ""
}
