package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/journal"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

func TestStatusLine(t *testing.T) {
	t.Parallel()
	now := time.Unix(10_000, 0)
	held := []remediate.Change{{Setting: "stop-writes-on-bgsave-error", Value: "no", Time: now.Add(-3*time.Minute - 10*time.Second)}}
	f := func(ids ...string) []policy.Finding {
		var fs []policy.Finding
		for _, id := range ids {
			fs = append(fs, policy.Finding{ID: id})
		}
		return fs
	}
	for _, tc := range []struct {
		names   []string
		reports []*daemon.TickReport
		want    string
	}{
		{[]string{"main"}, []*daemon.TickReport{nil}, "1 instance: main starting"},
		{[]string{"main"}, []*daemon.TickReport{{Up: true}}, "1 instance: main ok"},
		{[]string{"cache", "main"}, []*daemon.TickReport{{Up: true, Findings: f("bgsave_failed"), Held: held}, {Up: false}},
			"2 instances: cache bgsave_failed, holding stop-writes-on-bgsave-error=no 3m; main unreachable"},
		{[]string{"x"}, []*daemon.TickReport{{Up: true, Findings: f("a", "b", "c", "d")}}, "1 instance: x a, b, +2"},
	} {
		if got := statusLine(tc.names, tc.reports, now); got != tc.want {
			t.Errorf("statusLine = %q\n                want %q", got, tc.want)
		}
	}
	if got := roughly(2*time.Hour + 5*time.Minute); got != "2h05m" {
		t.Errorf("roughly(2h5m) = %q", got)
	}
}

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
	var out, errb bytes.Buffer
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

func TestServiceEventsHaveMessageIDs(t *testing.T) {
	t.Parallel()
	for _, ev := range []string{eventStarted, eventStopping, eventReloaded, eventReloadFailed} {
		if _, ok := journal.MessageIDs[ev]; !ok {
			t.Errorf("event %q has no MESSAGE_ID", ev)
		}
	}
}
