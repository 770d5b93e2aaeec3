package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	sdjournal "github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/redis-guardian/redis-guardian/internal/journal"
)

// Log formats for --log-format.
const (
	logAuto    = "auto"
	logJournal = "journal"
	logConsole = "console"
	logJSON    = "json"
)

// journalSocket is where journald listens for native entries.
const journalSocket = "/run/systemd/journal/socket"

// newLogger builds the logger. "auto" writes native journal entries when stderr is
// connected to the journal (systemd sets JOURNAL_STREAM to its device:inode), so
// every field is queryable; anywhere else it writes console lines to stderr. It
// returns the format actually chosen.
func newLogger(env Env, level, format string) (*zap.Logger, string, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, "", fmt.Errorf("--log-level: %w", err)
	}
	if format == logAuto {
		format = logConsole
		if stderrIsJournal(env) {
			format = logJournal
		}
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.SecondsDurationEncoder
	// Locked: go-redis logs from its own dial goroutines, and stderr may be any
	// writer (a buffer in tests, a pipe whose entries must not interleave).
	errOut := zapcore.Lock(zapcore.AddSync(env.Stderr))
	switch format {
	case logConsole:
		return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(ec), errOut, lvl), zap.ErrorOutput(errOut)), format, nil
	case logJSON:
		return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), errOut, lvl), zap.ErrorOutput(errOut)), format, nil
	case logJournal:
		if !sdjournal.Enabled() {
			return nil, "", fmt.Errorf("--log-format journal: cannot reach journald at %s", journalSocket)
		}
		return zap.New(journal.NewCore(lvl, nil), zap.AddCaller(), zap.ErrorOutput(errOut)), format, nil
	default:
		return nil, "", fmt.Errorf("--log-format: %q is not one of auto, journal, console, json", format)
	}
}

// stderrIsJournal compares JOURNAL_STREAM with stderr's device and inode, as
// systemd documents: the variable alone is inherited by children whose stderr was
// redirected elsewhere.
func stderrIsJournal(env Env) bool {
	js := env.Getenv("JOURNAL_STREAM")
	f, ok := env.Stderr.(*os.File)
	if js == "" || !ok {
		return false
	}
	devStr, inoStr, ok := strings.Cut(js, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devStr, 10, 64)
	ino, err2 := strconv.ParseUint(inoStr, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}
