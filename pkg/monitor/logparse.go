package monitor

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// maxEventLineBytes bounds LogEvent.Line. Redis itself truncates a message at
// LOG_MAX_LEN (1024) bytes, so a longer line is not something Redis wrote whole.
const maxEventLineBytes = 1024

// logPrefix matches the prefix serverLogRaw writes before each message:
//
//	5.0+:     "12345:M 21 Nov 2026 15:37:29.123 # msg"
//	3.0-4.0:  "12345:M 21 Nov 15:37:29.123 # msg"   (no year)
//	2.x:      "[12345] 21 Nov 15:37:29.123 # msg"
//
// The role is M (master), S (replica), C (fork child) or X (sentinel); the level
// is one of ".-*#" (debug, verbose, notice, warning). A compiled Regexp is safe
// for concurrent use and never changes, so this is not mutable state.
var logPrefix = regexp.MustCompile(
	`^(?:\d+:[MSCX]|\[\d+\]) (\d{1,2} [A-Z][a-z]{2}(?: \d{4})? \d{2}:\d{2}:\d{2}\.\d{3}) [.\-*#] `)

// The layout strftime("%d %b %Y %H:%M:%S.") plus milliseconds produces.
const logTimeLayout = "2 Jan 2006 15:04:05.000"

// ParseLogLine recognises one line of a Redis log and returns the event it
// reports. It is pure, so the follower, a journal reader and tests can share it.
//
// The line may carry Redis's own prefix (pid, role, timestamp, level) or be the
// bare message, as syslog and the journal store it. The timestamp is parsed in
// loc (time.Local when nil), because Redis prints the local time of its own
// process; a line without a year (Redis < 5.0) or without a prefix leaves Time
// zero and the caller fills in when it was read.
//
// A line that is not one of the recognised kinds returns false. For
// LogOutputBufferClosed, Cause is the client class whose limit was hit
// ("normal", "replica", "pubsub", "master"), the name client-output-buffer-limit
// uses, since that is what an operator would change.
func ParseLogLine(line string, loc *time.Location) (LogEvent, bool) {
	line = strings.TrimSpace(line)
	if line == "" {
		return LogEvent{}, false
	}
	if loc == nil {
		loc = time.Local
	}

	msg := line
	var ts time.Time
	if m := logPrefix.FindStringSubmatchIndex(line); m != nil {
		msg = line[m[1]:]
		stamp := line[m[2]:m[3]]
		// Without a year the date cannot be placed; guessing one would be wrong
		// around new year, so the caller's "seen at" is used instead.
		if strings.Count(stamp, " ") == 3 {
			if t, err := time.ParseInLocation(logTimeLayout, stamp, loc); err == nil {
				ts = t
			}
		}
	}

	kind, cause, ok := classifyLogMessage(msg)
	if !ok {
		return LogEvent{}, false
	}
	return LogEvent{Kind: kind, Cause: cause, Time: ts, Line: truncateUTF8(line, maxEventLineBytes)}, true
}

// classifyLogMessage maps a bare Redis log message to its kind and cause. The
// wording is Redis's own (src/rdb.c, src/aof.c, src/networking.c, 2.8 to 7.2+);
// variants across versions are listed together.
func classifyLogMessage(msg string) (LogKind, string, bool) {
	if rest, ok := strings.CutPrefix(msg, "Can't save in background: fork: "); ok {
		return LogForkFailed, rest, true
	}
	// The AOF rewrite forks too and fails for the same reasons (EAGAIN, ENOMEM),
	// so it counts as the same fault.
	if rest, ok := strings.CutPrefix(msg, "Can't rewrite append only file in background: fork: "); ok {
		return LogForkFailed, rest, true
	}

	// "Write error saving DB on disk: R" (<= 6.2), "...on disk(op): R" (7.0),
	// "Write error while saving DB to the disk(op): R" (7.2+).
	for _, p := range []string{"Write error saving DB on disk", "Write error while saving DB to the disk"} {
		if rest, ok := strings.CutPrefix(msg, p); ok {
			return LogRDBWriteError, afterFirst(rest, ": "), true
		}
	}
	if rest, ok := strings.CutPrefix(msg, "Failed to fsync directory while saving DB: "); ok {
		return LogRDBWriteError, rest, true
	}
	// The rename of temp-<pid>.rdb over dump.rdb, e.g. EXDEV or EACCES.
	if strings.HasPrefix(msg, "Error moving temp DB file ") {
		return LogRDBWriteError, afterLast(msg, ": "), true
	}
	// "Failed opening the temp RDB file temp-1.rdb (in server root dir /d) for saving: R" (7.0+),
	// "Failed opening the RDB file ..." (3.2-6.2), "Failed opening .rdb for saving: R" (older).
	// Cut at the last separator because the directory may itself contain one.
	if strings.HasPrefix(msg, "Failed opening ") {
		if i := strings.LastIndex(msg, " for saving: "); i >= 0 {
			return LogRDBOpenFailed, msg[i+len(" for saving: "):], true
		}
	}

	if strings.HasPrefix(msg, "Background saving error") {
		return LogBgsaveError, "", true
	}
	if rest, ok := strings.CutPrefix(msg, "Background saving terminated by signal "); ok {
		cause, ok := signalCause(rest)
		return LogBgsaveSignal, cause, ok
	}
	if strings.HasPrefix(msg, "Background saving terminated with success") {
		return LogBgsaveOK, "", true
	}

	if strings.HasPrefix(msg, "Background AOF rewrite terminated with error") {
		return LogAOFRewriteError, "", true
	}
	if rest, ok := strings.CutPrefix(msg, "Background AOF rewrite terminated by signal "); ok {
		cause, ok := signalCause(rest)
		return LogAOFRewriteError, cause, ok
	}
	if strings.HasPrefix(msg, "Background AOF rewrite has repeatedly failed") {
		return LogAOFRewriteLimit, "", true
	}
	// The lines below fail the rewrite (INFO aof_last_bgrewrite_status:err), not
	// the AOF writes of the main process (aof_last_write_status), so they are
	// rewrite errors with a cause: the rewrite child's write error, the
	// manifest and incr files created when a rewrite starts (7.0+), and the
	// renames when it ends.
	if rest, ok := strings.CutPrefix(msg, "Write error writing append only file on disk: "); ok {
		return LogAOFRewriteError, rest, true
	}
	for _, p := range []string{
		"Error trying to write the temporary AOF manifest file ",
		"Error trying to rename the temporary AOF ",
		"Can't open the append-only file ",
		"Can't open the append only file ",
	} {
		if strings.HasPrefix(msg, p) {
			return LogAOFRewriteError, afterLast(msg, ": "), true
		}
	}

	if rest, ok := strings.CutPrefix(msg, "Error writing to the AOF file: "); ok {
		return LogAOFWriteError, rest, true
	}
	// A short write is how a full disk usually shows; the counts say how much was lost.
	if rest, ok := strings.CutPrefix(msg, "Short write while writing to the AOF file"); ok {
		return LogAOFWriteError, strings.TrimSpace("short write " + strings.TrimPrefix(rest, ": ")), true
	}
	if rest, ok := strings.CutPrefix(msg, "Can't persist AOF for fsync error when the AOF fsync policy is 'always': "); ok {
		return LogAOFWriteError, strings.TrimSuffix(rest, ". Exiting..."), true
	}
	if rest, ok := strings.CutPrefix(msg, "Fail to fsync the AOF file: "); ok {
		return LogAOFWriteError, strings.TrimSuffix(rest, "."), true
	}
	if strings.HasPrefix(msg, "AOF write error looks solved") {
		return LogAOFWriteSolved, "", true
	}
	if strings.HasPrefix(msg, "Asynchronous AOF fsync is taking too long") {
		return LogAOFFsyncSlow, "", true
	}

	if client, ok := strings.CutPrefix(msg, "Client "); ok {
		for _, s := range []string{
			" scheduled to be closed ASAP for overcoming of output buffer limits.",
			" closed for overcoming of output buffer limits.",
		} {
			if info, ok := strings.CutSuffix(client, s); ok {
				return LogOutputBufferClosed, clientClass(info), true
			}
		}
	}
	return "", "", false
}

// signalCause turns the number after "terminated by signal " into "signal N".
// SIGUSR1 is how Redis stops its own child on purpose (FLUSHALL, SHUTDOWN, a
// replica resync) and Redis does not count it as an error, so neither do we.
func signalCause(rest string) (string, bool) {
	digits := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = rest[:i]
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n == int(syscall.SIGUSR1) {
		return "", false
	}
	return "signal " + digits, true
}

// clientClass reads the flags= field of a CLIENT LIST style description and
// names the output buffer class Redis applied (getClientType in networking.c).
func clientClass(info string) string {
	flags, ok := clientField(info, "flags")
	if !ok {
		return ""
	}
	switch {
	case strings.Contains(flags, "M"):
		return "master"
	case strings.Contains(flags, "S"): // a MONITOR client shows O, not S
		return "replica"
	case strings.Contains(flags, "P"):
		return "pubsub"
	default:
		return "normal"
	}
}

// clientField returns the value of key in a "k=v k=v" description.
func clientField(info, key string) (string, bool) {
	for _, f := range strings.Fields(info) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// afterFirst returns what follows the first sep in s, or "" when there is none.
func afterFirst(s, sep string) string {
	_, after, _ := strings.Cut(s, sep)
	return after
}

// afterLast returns what follows the last sep in s, or "" when there is none.
// Redis puts strerror() last and it never contains ": ", while the paths before
// it may.
func afterLast(s, sep string) string {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return ""
	}
	return s[i+len(sep):]
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// LogSourceFromConfig says where a Redis with these settings (CONFIG GET logfile,
// syslog-enabled) writes its log: "file" and the path, "syslog", or "stdout"
// (under systemd that is the journal; with daemonize yes it is /dev/null).
//
// A relative logfile is returned as is. Redis reopens the file by name for
// every line, so it resolves against Redis's current working directory: `dir`
// once the config has set it (setting dir is a chdir), the start directory
// otherwise. Only a caller that knows that cwd (e.g. /proc/<pid>/cwd of a local
// Redis) should join the two.
func LogSourceFromConfig(logfile string, syslogEnabled bool) (source LogSource, path string) {
	switch {
	case logfile == "/dev/stdout" || logfile == "/dev/stderr":
		// Redis's own stdout or stderr (container images set this): not a file
		// anyone can follow, and the path would name the guardian's own.
		return LogStdout, ""
	case logfile != "":
		// Redis writes the file even when syslog is also enabled; the file is
		// the one we can read.
		return LogFile, logfile
	case syslogEnabled:
		return LogSyslog, ""
	default:
		return LogStdout, ""
	}
}
