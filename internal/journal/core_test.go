package journal

import (
	"bufio"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type sent struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

func recorder(out *[]sent) SendFunc {
	return func(m string, p journal.Priority, v map[string]string) error {
		*out = append(*out, sent{m, p, v})
		return nil
	}
}

func TestCoreFieldsAndMessage(t *testing.T) {
	t.Parallel()
	var got []sent
	log := zap.New(NewCore(zapcore.DebugLevel, recorder(&got)), zap.AddCaller()).
		Named("remediate").With(zap.String("instance", "main"), zap.String("addr", "/run/redis/redis.sock"))
	log.Warn("set stop-writes-on-bgsave-error no (was yes)",
		zap.String("event", "remedy_applied"), zap.String("remedy", "stop_writes"), zap.String("setting", "stop-writes-on-bgsave-error"),
		zap.String("old_value", "yes"), zap.String("new_value", "no"), zap.Duration("took", 1500*time.Millisecond),
		zap.Bool("dry_run", false), zap.Int("n", 3), zap.Error(errors.New("boom")))
	if len(got) != 1 {
		t.Fatalf("sent %d entries, want 1", len(got))
	}
	e := got[0]
	if e.prio != journal.PriWarning {
		t.Errorf("priority %d, want %d", e.prio, journal.PriWarning)
	}
	if e.msg != "set stop-writes-on-bgsave-error no (was yes): boom" {
		t.Errorf("MESSAGE %q: want the text with the error appended", e.msg)
	}
	if !strings.HasSuffix(e.vars["CODE_FILE"], "core_test.go") || e.vars["CODE_LINE"] == "" || !strings.Contains(e.vars["CODE_FUNC"], "TestCoreFieldsAndMessage") {
		t.Errorf("CODE_* = %q %q %q, want this test's", e.vars["CODE_FILE"], e.vars["CODE_LINE"], e.vars["CODE_FUNC"])
	}
	for _, k := range []string{"CODE_FILE", "CODE_LINE", "CODE_FUNC"} {
		delete(e.vars, k)
	}
	want := map[string]string{
		"SYSLOG_IDENTIFIER": "redis-guardian", "LOGGER": "remediate", "MESSAGE_ID": MessageIDs["remedy_applied"],
		"REDIS_INSTANCE": "main", "REDIS_ADDR": "/run/redis/redis.sock", "EVENT": "remedy_applied", "REMEDY": "stop_writes",
		"SETTING": "stop-writes-on-bgsave-error", "OLD_VALUE": "yes", "NEW_VALUE": "no", "TOOK": "1.5", "DRY_RUN": "false", "N": "3",
		"ERROR": "boom",
	}
	if d := cmp.Diff(want, e.vars); d != "" {
		t.Errorf("fields (-want +got):\n%s", d)
	}
}

func TestCoreLevels(t *testing.T) {
	t.Parallel()
	var got []sent
	log := zap.New(NewCore(zapcore.InfoLevel, recorder(&got)))
	log.Debug("hidden")
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	log.DPanic("d") // not in development mode: logs, does not panic
	want := []journal.Priority{journal.PriInfo, journal.PriWarning, journal.PriErr, journal.PriCrit}
	if len(got) != len(want) {
		t.Fatalf("sent %d entries, want %d (debug filtered)", len(got), len(want))
	}
	for i, w := range want {
		if got[i].prio != w {
			t.Errorf("entry %q: priority %d, want %d", got[i].msg, got[i].prio, w)
		}
	}
}

func TestUnknownEventHasNoMessageID(t *testing.T) {
	t.Parallel()
	_, vars := Convert(zapcore.Entry{Message: "x"}, []zapcore.Field{zap.String("event", "never_heard_of"), zap.String("MESSAGE", "spoof"), zap.String("_PID", "1")})
	if _, ok := vars["MESSAGE_ID"]; ok {
		t.Errorf("an unknown event got MESSAGE_ID %q", vars["MESSAGE_ID"])
	}
	if _, ok := vars["MESSAGE"]; ok {
		t.Error("a field named MESSAGE overrode the message")
	}
	if _, ok := vars["_PID"]; ok {
		t.Error("a field _PID was sent as the trusted _PID")
	}
}

func TestFieldName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"old_value":             "OLD_VALUE",
		"bytes-freed":           "BYTES_FREED",
		"tick.duration":         "TICK_DURATION",
		"9lives":                "LIVES",
		"_private":              "PRIVATE",
		"ünïcode":               "N_CODE",
		"___":                   "",
		strings.Repeat("a", 70): strings.Repeat("A", 64),
	} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
		if got := FieldName(in); got != "" && !regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`).MatchString(got) {
			t.Errorf("FieldName(%q) = %q is not a valid journal field name", in, got)
		}
	}
}

// TestCatalogCoversEveryMessageID keeps the shipped catalog and the table in step:
// every id has an entry, every entry an id, and ids are unique 128-bit hex.
func TestCatalogCoversEveryMessageID(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../packaging/journal/redis-guardian.catalog")
	if err != nil {
		t.Fatalf("the catalog ships with the package: %v", err)
	}
	defer f.Close()
	inCatalog := map[string]bool{}
	sc := bufio.NewScanner(f)
	var last string
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "-- "); ok {
			if inCatalog[id] {
				t.Errorf("catalog: %s appears twice", id)
			}
			inCatalog[id] = true
			last = id
			continue
		}
		if last != "" && strings.HasPrefix(line, "Subject: ") && len(line) < len("Subject: x") {
			t.Errorf("catalog: %s has an empty subject", last)
		}
	}
	hex := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]string{}
	for ev, id := range MessageIDs {
		if !hex.MatchString(id) {
			t.Errorf("%s: MESSAGE_ID %q is not 32 lowercase hex digits", ev, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share MESSAGE_ID %s", ev, other, id)
		}
		seen[id] = ev
		if !inCatalog[id] {
			t.Errorf("%s: MESSAGE_ID %s has no catalog entry", ev, id)
		}
	}
	for id := range inCatalog {
		if _, ok := seen[id]; !ok {
			t.Errorf("catalog entry %s belongs to no event", id)
		}
	}
}
