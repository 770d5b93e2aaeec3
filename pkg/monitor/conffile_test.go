package monitor

import (
	"os"
	"path/filepath"
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
