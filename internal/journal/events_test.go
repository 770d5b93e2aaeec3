package journal_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis-guardian/redis-guardian/internal/journal"
	"github.com/redis-guardian/redis-guardian/pkg/events"
)

// TestEveryEventHasAMessageID: an event the code logs without an id would be
// invisible to `journalctl MESSAGE_ID=` queries and the catalog, unless it is
// listed as deliberately having none.
func TestEveryEventHasAMessageID(t *testing.T) {
	t.Parallel()
	for _, ev := range events.All {
		_, hasID := journal.MessageIDs[string(ev)]
		_, none := events.WithoutMessageID[ev]
		switch {
		case hasID && none:
			t.Errorf("event %q has a MESSAGE_ID and is listed as having none", ev)
		case !hasID && !none:
			t.Errorf("event %q has no MESSAGE_ID and is not listed in events.WithoutMessageID", ev)
		}
	}
	known := map[string]bool{}
	for _, ev := range events.All {
		known[string(ev)] = true
	}
	for ev := range journal.MessageIDs {
		if !known[ev] {
			t.Errorf("MessageIDs names %q, which is not in events.All", ev)
		}
	}
}

// TestNoEventLiterals: every "event" field is logged through events.Field, so an
// event cannot be added without a constant, and so without the test above seeing it.
func TestNoEventLiterals(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "dist") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if ok && lit.Kind == token.STRING && lit.Value == `"event"` && !strings.HasSuffix(filepath.ToSlash(path), "pkg/events/events.go") {
				t.Errorf("%s: the \"event\" field is written by hand; log it with events.Field", fset.Position(lit.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
