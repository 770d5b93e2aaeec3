package monitor

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfigFile(t *testing.T) {
	t.Parallel()
	text := "# stop-writes-on-bgsave-error no\n" +
		"save 900 1\n" +
		"stop-writes-on-bgsave-error yes\n" +
		"\n" +
		"  Stop-Writes-On-Bgsave-Error   \"no\"  \n" +
		"auto-aof-rewrite-percentage\t0\n" +
		"appendonly yes\n"
	got := ParseConfigFile(text, []string{"stop-writes-on-bgsave-error", "auto-aof-rewrite-percentage"})
	want := map[string]ConfigFileLine{
		"stop-writes-on-bgsave-error": {Number: 5, Value: "no", Text: `Stop-Writes-On-Bgsave-Error   "no"`},
		"auto-aof-rewrite-percentage": {Number: 6, Value: "0", Text: "auto-aof-rewrite-percentage\t0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseConfigFile (-want +got):\n%s", diff)
	}
}

func TestReadConfigFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.conf")
	if r := ReadConfigFile(path, []string{"save"}); r.Known || r.Err == nil {
		t.Errorf("a missing file: Known %v, Err %v; want an error", r.Known, r.Err)
	}
	if err := os.WriteFile(path, []byte("save \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ReadConfigFile(path, []string{"save"})
	if !r.Known || r.Err != nil || r.Lines["save"].Value != "" || r.Lines["save"].Number != 1 || r.Size != 8 {
		t.Errorf("ReadConfigFile = %+v", r)
	}
}

// fuzzFileSettings are the settings the guardian looks up in a config file: those a
// remedy holds (policy.HeldSettings, which this package cannot import) and those
// preflight reads.
var fuzzFileSettings = []string{
	"active-defrag-cycle-max", "activedefrag", "auto-aof-rewrite-percentage", "client-output-buffer-limit",
	"maxmemory", "no-appendfsync-on-rewrite", "oom-score-adj", "save", "stop-writes-on-bgsave-error",
	"dir", "appendonly", "appenddirname", "appendfilename",
}

// FuzzParseConfigFile checks ParseConfigFile against what Redis does with its
// config file: only the settings asked for, the last line that sets one wins, each
// result points at a line of the text that says it, and neither CRLF line endings
// nor lines put in front change a value.
func FuzzParseConfigFile(f *testing.F) {
	conf, err := os.ReadFile(filepath.Join("testdata", "redis-7.0-rewritten.conf"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(conf))
	f.Add("save \"\"\nSAVE\t'900 1'\n  stop-writes-on-bgsave-error   \"no\"  \n# save 1 1\n")
	f.Add("dir\t\t/var/lib/redis\r\nappendonly \"yes\r\nappendfilename '\n")
	f.Fuzz(func(t *testing.T, text string) {
		got := ParseConfigFile(text, fuzzFileSettings)
		if again := ParseConfigFile(text, fuzzFileSettings); !cmp.Equal(got, again) {
			t.Fatalf("not deterministic:\n%s", cmp.Diff(got, again))
		}
		lines := strings.Split(text, "\n")
		for name, l := range got {
			checkConfigFileLine(t, lines, name, l)
		}
		crlf := ParseConfigFile(strings.ReplaceAll(text, "\n", "\r\n"), fuzzFileSettings)
		if diff := cmp.Diff(got, crlf); diff != "" {
			t.Errorf("CRLF line endings change the result (-LF +CRLF):\n%s", diff)
		}
		shifted := ParseConfigFile("# a comment\n\n"+text, fuzzFileSettings)
		for name, l := range got {
			l.Number += 2
			if shifted[name] != l {
				t.Errorf("%s: two lines put in front: %+v, want %+v", name, shifted[name], l)
			}
		}
		if len(shifted) != len(got) {
			t.Errorf("two lines put in front: %d settings, want %d", len(shifted), len(got))
		}
	})
}

// checkConfigFileLine checks one result of ParseConfigFile against the text's lines.
func checkConfigFileLine(t *testing.T, lines []string, name string, l ConfigFileLine) {
	t.Helper()
	if !slices.Contains(fuzzFileSettings, name) {
		t.Fatalf("%q was not asked for", name)
	}
	if l.Number < 1 || l.Number > len(lines) {
		t.Fatalf("%s: line %d of %d", name, l.Number, len(lines))
	}
	if want := strings.TrimSpace(lines[l.Number-1]); l.Text != want {
		t.Errorf("%s: Text %q, want line %d %q", name, l.Text, l.Number, want)
	}
	if !strings.HasPrefix(strings.ToLower(l.Text), name) {
		t.Errorf("%s: Text %q does not start with the setting", name, l.Text)
	}
	// A tab between the name and the value reads as a space (the value is still
	// compared with policy.SameValue, which normalises whitespace where it matters).
	if sp := func(s string) string { return strings.ReplaceAll(s, "\t", " ") }; !strings.Contains(sp(l.Text), sp(l.Value)) {
		t.Errorf("%s: Value %q is not in Text %q", name, l.Value, l.Text)
	}
	if later := ParseConfigFile(strings.Join(lines[l.Number:], "\n"), []string{name}); len(later) != 0 {
		t.Errorf("%s: line %d is not the last to set it (line %d does too)", name, l.Number, l.Number+later[name].Number)
	}
}
