package monitor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Lines as Redis 7.0 writes them; each is a different kind so tests can tell
// which ones were read.
const (
	lineFork   = "5324:M 21 Nov 2026 15:39:29.165 # Can't save in background: fork: Resource temporarily unavailable\n"
	lineRDBErr = "7290:C 21 Nov 2026 15:39:36.240 # Write error saving DB on disk(rdbSaveRio): No space left on device\n"
	lineBgErr  = "5324:M 21 Nov 2026 15:39:36.277 # Background saving error\n"
	lineOpen   = "7320:C 21 Nov 2026 15:39:38.682 # Failed opening the temp RDB file temp-7320.rdb (in server root dir /d) for saving: Permission denied\n"
	lineSignal = "5324:M 21 Nov 2026 15:39:40.293 # Background saving terminated by signal 9\n"
	lineOK     = "5324:M 21 Nov 2026 15:39:40.796 * Background saving terminated with success\n"
	lineAOFErr = "5324:M 21 Nov 2026 15:40:19.070 # Error writing to the AOF file: No space left on device\n"
	lineNoise  = "5324:M 21 Nov 2026 15:39:26.599 * Background saving started by pid 5411\n"
)

// testTimeout bounds waits for what must happen (a wake-up, a line read):
// milliseconds here, but a loaded machine running the suite under -race may take
// seconds, and a longer bound costs a passing test nothing.
const testTimeout = 20 * time.Second

// stepFollower builds a Follower whose polls the test runs one at a time, so
// scenarios need no timing at all. bufSize makes reads split lines.
func stepFollower(t *testing.T, opts FollowerOptions, bufSize int) (*Follower, *tailer, func()) {
	t.Helper()
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	f := NewFollower(opts)
	tl := &tailer{f: f, buf: make([]byte, bufSize)}
	t.Cleanup(tl.close)
	return f, tl, func() { tl.poll(context.Background()) }
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// appendFile appends the way Redis does: open with O_APPEND, write, close.
func appendFile(t *testing.T, path, content string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	if _, err := fh.WriteString(content); err != nil {
		t.Fatalf("append to %s: %v", path, err)
	}
	if err := fh.Close(); err != nil {
		t.Fatalf("close %s: %v", path, err)
	}
}

// woke reports whether a wake-up is pending, and consumes it.
func woke(f *Follower) bool {
	select {
	case <-f.Wake():
		return true
	default:
		return false
	}
}

// causes summarises Last as kind -> cause.
func causes(r LogReading) map[LogKind]string {
	m := make(map[LogKind]string, len(r.Last))
	for k, ev := range r.Last {
		m[k] = ev.Cause
	}
	return m
}

func TestFollowerBackscan(t *testing.T) {
	t.Parallel()
	content := lineFork + lineRDBErr + lineNoise + lineBgErr
	tests := []struct {
		name     string
		backscan int64
		want     map[LogKind]string
	}{
		{"zero starts at end", 0, map[LogKind]string{}},
		{"mid line skips that line", int64(len(content) - len(lineFork) + 5), map[LogKind]string{
			LogRDBWriteError: "No space left on device",
			LogBgsaveError:   "",
		}},
		{"at line start keeps that line", int64(len(content) - len(lineFork)), map[LogKind]string{
			LogRDBWriteError: "No space left on device",
			LogBgsaveError:   "",
		}},
		{"one byte into the previous line", int64(len(content) - len(lineFork) + 1), map[LogKind]string{
			LogRDBWriteError: "No space left on device",
			LogBgsaveError:   "",
		}},
		{"whole file", int64(len(content)), map[LogKind]string{
			LogForkFailed:    "Resource temporarily unavailable",
			LogRDBWriteError: "No space left on device",
			LogBgsaveError:   "",
		}},
		{"more than the file", 1 << 20, map[LogKind]string{
			LogForkFailed:    "Resource temporarily unavailable",
			LogRDBWriteError: "No space left on device",
			LogBgsaveError:   "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "redis.log")
			writeFile(t, path, content)
			f, _, step := stepFollower(t, FollowerOptions{Path: path, Backscan: tt.backscan}, 16)
			step()
			r := f.Reading()
			if r.Err != nil {
				t.Fatalf("Err = %v", r.Err)
			}
			if diff := cmp.Diff(tt.want, causes(r)); diff != "" {
				t.Errorf("Last after backscan (-want +got):\n%s", diff)
			}
			if woke(f) {
				t.Error("backscan woke the caller; it must only teach causes")
			}

			// Lines appended after the start are news.
			appendFile(t, path, lineSignal)
			step()
			if got := f.Reading().Last[LogBgsaveSignal].Cause; got != "signal 9" {
				t.Errorf("new line cause = %q, want %q", got, "signal 9")
			}
			if !woke(f) {
				t.Error("new matching line did not wake")
			}
		})
	}
}

func TestFollowerEventFields(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	writeFile(t, path, "")
	seen := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f, _, step := stepFollower(t, FollowerOptions{Path: path, Now: func() time.Time { return seen }}, 4096)
	step()
	appendFile(t, path, lineFork+"Background saving terminated by signal 9\n")
	step()
	want := map[LogKind]LogEvent{
		LogForkFailed: {
			Kind:  LogForkFailed,
			Cause: "Resource temporarily unavailable",
			Time:  time.Date(2026, 11, 21, 15, 39, 29, 165e6, time.UTC),
			Line:  strings.TrimSuffix(lineFork, "\n"),
		},
		// A line without a timestamp (syslog style) is stamped when read.
		LogBgsaveSignal: {
			Kind:  LogBgsaveSignal,
			Cause: "signal 9",
			Time:  seen,
			Line:  "Background saving terminated by signal 9",
		},
	}
	r := f.Reading()
	if diff := cmp.Diff(LogReading{Source: "file", Path: path, Last: want}, r); diff != "" {
		t.Errorf("Reading (-want +got):\n%s", diff)
	}
	// Reading returns a copy: changing it must not reach the follower.
	delete(r.Last, LogForkFailed)
	if _, ok := f.Reading().Last[LogForkFailed]; !ok {
		t.Error("Reading shares its map with the follower")
	}
}

func TestFollowerPartialLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	// The file ends inside a line Redis is still writing when we start: its
	// rest must not be taken for a line of its own.
	writeFile(t, path, lineNoise+"5324:M 21 Nov 2026 15:39:36.277 # Background saving err")
	f, _, step := stepFollower(t, FollowerOptions{Path: path}, 8)
	step()
	appendFile(t, path, "or\n")
	step()
	if got := causes(f.Reading()); len(got) != 0 {
		t.Errorf("line begun before the start was recorded: %v", got)
	}
	if woke(f) {
		t.Error("line begun before the start woke")
	}

	// A line written in two pieces counts once it is complete.
	half := len(lineFork) / 2
	appendFile(t, path, lineFork[:half])
	step()
	if got := causes(f.Reading()); len(got) != 0 || woke(f) {
		t.Fatalf("incomplete line was recorded: %v", got)
	}
	appendFile(t, path, lineFork[half:])
	step()
	if got := f.Reading().Last[LogForkFailed].Cause; got != "Resource temporarily unavailable" {
		t.Errorf("cause = %q, want the full cause", got)
	}
	if !woke(f) {
		t.Error("completed line did not wake")
	}
}

func TestFollowerLongLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	writeFile(t, path, "")
	f, tl, step := stepFollower(t, FollowerOptions{Path: path}, 4096)
	step()

	long := "Background saving error " + strings.Repeat("x", 3*maxLogLineBytes)
	appendFile(t, path, long[:len(long)/2])
	step()
	if len(tl.line) > maxLogLineBytes {
		t.Errorf("held %d bytes of one line, want <= %d", len(tl.line), maxLogLineBytes)
	}
	appendFile(t, path, long[len(long)/2:]+"\n"+lineAOFErr)
	step()

	r := f.Reading()
	if ev, ok := r.Last[LogBgsaveError]; !ok || len(ev.Line) > maxEventLineBytes {
		t.Errorf("long line: recorded %v, Line %d bytes", ok, len(ev.Line))
	}
	if got := r.Last[LogAOFWriteError].Cause; got != "No space left on device" {
		t.Errorf("line after the long one: cause %q", got)
	}
	if cap(tl.line) > 2*maxLogLineBytes {
		t.Errorf("line buffer grew to %d bytes", cap(tl.line))
	}
}

func TestFollowerCopyTruncate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	writeFile(t, path, strings.Repeat(lineNoise, 20))
	f, _, step := stepFollower(t, FollowerOptions{Path: path}, 64)
	step()
	appendFile(t, path, lineFork)
	step()
	woke(f)

	// logrotate copytruncate: copy away, cut to zero, Redis appends at the new end.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lineRDBErr)
	step()
	if got := f.Reading().Last[LogRDBWriteError].Cause; got != "No space left on device" {
		t.Errorf("line after truncation: cause %q", got)
	}
	if !woke(f) {
		t.Error("line after truncation did not wake")
	}
}

func TestFollowerRenameRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "redis.log")
	writeFile(t, path, lineNoise)
	f, _, step := stepFollower(t, FollowerOptions{Path: path}, 64)
	step()
	appendFile(t, path, lineFork)
	step()

	// logrotate create mode: rename, then a new file at the path. A line that
	// reached the old file just before the rename must still be read.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".1", lineRDBErr)
	writeFile(t, path, lineBgErr)
	step()
	appendFile(t, path, lineSignal)
	step()

	r := f.Reading()
	want := map[LogKind]string{
		LogForkFailed:    "Resource temporarily unavailable",
		LogRDBWriteError: "No space left on device",
		LogBgsaveError:   "",
		LogBgsaveSignal:  "signal 9",
	}
	if diff := cmp.Diff(want, causes(r)); diff != "" {
		t.Errorf("Last (-want +got):\n%s", diff)
	}
	if r.Err != nil {
		t.Errorf("Err = %v", r.Err)
	}
}

func TestFollowerMissingAtStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	f, _, step := stepFollower(t, FollowerOptions{Path: path, Backscan: 1 << 20}, 64)
	step()
	step()
	r := f.Reading()
	if !errors.Is(r.Err, fs.ErrNotExist) {
		t.Fatalf("Err = %v, want not exist", r.Err)
	}
	if r.Source != "file" || r.Path != path {
		t.Errorf("Source, Path = %q, %q", r.Source, r.Path)
	}

	// A file that appears later is new: read from its start, and it is news.
	writeFile(t, path, lineOpen)
	step()
	r = f.Reading()
	if r.Err != nil {
		t.Errorf("Err = %v after the file appeared", r.Err)
	}
	if got := r.Last[LogRDBOpenFailed].Cause; got != "Permission denied" {
		t.Errorf("cause = %q", got)
	}
	if !woke(f) {
		t.Error("line in the new file did not wake")
	}
}

func TestFollowerMissingTemporarily(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	writeFile(t, path, lineFork)
	f, _, step := stepFollower(t, FollowerOptions{Path: path}, 64)
	step()
	appendFile(t, path, lineRDBErr)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	step()
	r := f.Reading()
	if !errors.Is(r.Err, fs.ErrNotExist) {
		t.Errorf("Err = %v, want not exist", r.Err)
	}
	// The line written before the removal was still read from the open file.
	if _, ok := r.Last[LogRDBWriteError]; !ok {
		t.Error("line written before the removal was lost")
	}

	writeFile(t, path, lineOK)
	step()
	r = f.Reading()
	if r.Err != nil {
		t.Errorf("Err = %v after the file came back", r.Err)
	}
	if _, ok := r.Last[LogBgsaveOK]; !ok {
		t.Error("recreated file not read from its start")
	}
}

func TestCarryCause(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 21, 15, 40, 28, 116e6, time.UTC)
	child := LogEvent{Kind: LogAOFRewriteError, Cause: "No space left on device", Time: t0}
	parent := LogEvent{Kind: LogAOFRewriteError, Time: t0.Add(100 * time.Millisecond), Line: "terminated with error"}
	tests := []struct {
		name      string
		prev, ev  LogEvent
		wantCause string
	}{
		{"parent right after child", child, parent, "No space left on device"},
		{"too late", child, LogEvent{Kind: LogAOFRewriteError, Time: t0.Add(time.Minute)}, ""},
		{"earlier than child", child, LogEvent{Kind: LogAOFRewriteError, Time: t0.Add(-time.Second)}, ""},
		{"own cause wins", child, LogEvent{Kind: LogAOFRewriteError, Cause: "signal 9", Time: t0}, "signal 9"},
		{"nothing before", LogEvent{}, parent, ""},
		{"other kinds untouched",
			LogEvent{Kind: LogOutputBufferClosed, Cause: "replica", Time: t0},
			LogEvent{Kind: LogOutputBufferClosed, Time: t0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := carryCause(tt.prev, tt.ev)
			want := tt.ev
			want.Cause = tt.wantCause
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("carryCause (-want +got):\n%s", diff)
			}
		})
	}
}

// runFollower starts Run in the background; cleanup cancels it and checks it
// returned nil.
func runFollower(t *testing.T, opts FollowerOptions) *Follower {
	t.Helper()
	if opts.Poll == 0 {
		opts.Poll = 10 * time.Millisecond
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	f := NewFollower(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(testTimeout):
			t.Error("Run did not return after cancel")
		}
	})
	return f
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitWake(t *testing.T, f *Follower) {
	t.Helper()
	select {
	case <-f.Wake():
	case <-time.After(testTimeout):
		t.Fatal("no wake-up for a new matching line")
	}
}

func hasKind(f *Follower, k LogKind) func() bool {
	return func() bool { _, ok := f.Reading().Last[k]; return ok }
}

func TestFollowerRun(t *testing.T) {
	t.Parallel()

	t.Run("wakes on a new line", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "redis.log")
		writeFile(t, path, lineFork)
		f := runFollower(t, FollowerOptions{Path: path, Backscan: 4096})
		eventually(t, "backscan", hasKind(f, LogForkFailed))
		appendFile(t, path, lineRDBErr)
		waitWake(t, f)
		if got := f.Reading().Last[LogRDBWriteError].Cause; got != "No space left on device" {
			t.Errorf("cause = %q", got)
		}
	})

	t.Run("rename rotation", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "redis.log")
		writeFile(t, path, lineFork)
		f := runFollower(t, FollowerOptions{Path: path, Backscan: 4096})
		eventually(t, "backscan", hasKind(f, LogForkFailed))
		// The last line before the rename may be read before or after it;
		// either way it must not be lost.
		appendFile(t, path, lineRDBErr)
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		appendFile(t, path, lineBgErr)
		eventually(t, "last line of the renamed file", hasKind(f, LogRDBWriteError))
		eventually(t, "line in the new file", hasKind(f, LogBgsaveError))
		appendFile(t, path, lineSignal)
		eventually(t, "second line in the new file", hasKind(f, LogBgsaveSignal))
	})

	t.Run("copytruncate", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "redis.log")
		writeFile(t, path, strings.Repeat(lineNoise, 10)+lineFork)
		f := runFollower(t, FollowerOptions{Path: path, Backscan: 1 << 20})
		eventually(t, "backscan", hasKind(f, LogForkFailed))
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		appendFile(t, path, lineOK)
		waitWake(t, f)
		eventually(t, "line after truncation", hasKind(f, LogBgsaveOK))
	})

	t.Run("missing at start", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "redis.log")
		f := runFollower(t, FollowerOptions{Path: path})
		eventually(t, "not-exist error", func() bool { return errors.Is(f.Reading().Err, fs.ErrNotExist) })
		appendFile(t, path, lineAOFErr)
		waitWake(t, f)
		eventually(t, "line in the new file", hasKind(f, LogAOFWriteError))
		if err := f.Reading().Err; err != nil {
			t.Errorf("Err = %v after the file appeared", err)
		}
	})
}

func TestFollowerRunCancel(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	writeFile(t, path, lineFork)
	f := NewFollower(FollowerOptions{Path: path, Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil on cancel", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not return promptly after cancel")
	}
}

func TestFollowerRunEmptyPath(t *testing.T) {
	t.Parallel()
	if err := NewFollower(FollowerOptions{}).Run(context.Background()); err == nil {
		t.Error("Run with an empty path returned nil")
	}
}

// TestFollowerRunInotify runs with a poll interval no test outlives, so only the
// inotify watch can deliver: a new line, a rotation, and a busy neighbour file that
// must not be mistaken for the log.
func TestFollowerRunInotify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "redis.log")
	writeFile(t, path, lineFork)
	f := runFollower(t, FollowerOptions{Path: path, Poll: time.Hour, Backscan: 4096})
	// The backscan is the first poll, after the watch was set up.
	eventually(t, "backscan", hasKind(f, LogForkFailed))
	appendFile(t, filepath.Join(dir, "dump.rdb"), "not a log line\n")
	appendFile(t, path, lineBgErr)
	waitWake(t, f)
	if _, ok := f.Reading().Last[LogBgsaveError]; !ok {
		t.Errorf("no bgsave error after the wake-up: %+v", f.Reading().Last)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lineRDBErr)
	eventually(t, "line in the new file", hasKind(f, LogRDBWriteError))
}

func TestLogWatchRelevant(t *testing.T) {
	t.Parallel()
	ev := func(mask uint32, name string) []byte {
		n := (len(name) + 1 + 15) / 16 * 16 // NUL-padded like the kernel
		b := make([]byte, unix.SizeofInotifyEvent+n)
		binary.NativeEndian.PutUint32(b[4:8], mask)
		binary.NativeEndian.PutUint32(b[12:16], uint32(n))
		copy(b[unix.SizeofInotifyEvent:], name)
		return b
	}
	w := &logWatch{name: "redis.log"}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"the log modified", ev(unix.IN_MODIFY, "redis.log"), true},
		{"a neighbour modified", ev(unix.IN_MODIFY, "dump.rdb"), false},
		{"neighbour then log", cat(ev(unix.IN_MODIFY, "dump.rdb"), ev(unix.IN_CREATE, "redis.log")), true},
		{"similar name", ev(unix.IN_MODIFY, "redis.log.1"), false},
		{"queue overflow", ev(unix.IN_Q_OVERFLOW, ""), true},
		{"directory moved", ev(unix.IN_MOVE_SELF, ""), true},
		{"torn batch", ev(unix.IN_MODIFY, "dump.rdb")[:unix.SizeofInotifyEvent+2], true},
	} {
		if got := w.relevant(tc.b); got != tc.want {
			t.Errorf("%s: relevant = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFollowerWakesOnlyForRemedies: an output-buffer line (thousands a second
// from a replica in a sync loop) is recorded but does not wake the loop; a failed
// save does.
func TestFollowerWakesOnlyForRemedies(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	writeFile(t, path, "")
	f, _, poll := stepFollower(t, FollowerOptions{Path: path}, 4096)
	poll()
	const lineBuf = "5324:M 21 Nov 2026 15:41:00.001 # Client id=7 addr=127.0.0.1:6380 laddr=127.0.0.1:6379 fd=9 name= age=1 idle=0 flags=S db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=10 omem=268435456 tot-mem=268436480 events=r cmd=psync user=default redir=-1 resp=2 lib-name= lib-ver= closed for overcoming of output buffer limits.\n"
	if _, ok := ParseLogLine(strings.TrimSuffix(lineBuf, "\n"), time.UTC); !ok {
		t.Fatal("the output-buffer line is not recognised: the test would prove nothing")
	}
	appendFile(t, path, strings.Repeat(lineBuf, 50))
	poll()
	if woke(f) {
		t.Error("output-buffer lines woke the loop")
	}
	if _, ok := f.Reading().Last[LogOutputBufferClosed]; !ok {
		t.Error("the output-buffer line was not recorded")
	}
	appendFile(t, path, lineFork)
	poll()
	if !woke(f) {
		t.Error("a failed fork did not wake the loop")
	}
}
