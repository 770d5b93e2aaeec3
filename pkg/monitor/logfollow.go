package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

const (
	// defaultLogPoll is how often the file is checked when FollowerOptions.Poll
	// is zero; it bounds the delay between Redis logging a fault and Wake.
	defaultLogPoll = 100 * time.Millisecond
	// maxLogLineBytes bounds the memory one line can take. Redis lines are at
	// most ~1 KiB; anything longer is not a Redis line and only its head matters.
	maxLogLineBytes = 64 << 10
	// logReadChunk is the read size; one buffer is reused for the whole Run.
	logReadChunk = 32 << 10
	// causeCarryWindow is how close a cause-less "Background AOF rewrite
	// terminated with error" must follow the child's own error line to inherit
	// its cause. The parent reaps the child within a serverCron tick (100 ms at
	// hz 10), so seconds are ample and do not join unrelated failures.
	causeCarryWindow = 10 * time.Second
	// logWatchFallback is how often a follower woken by inotify still polls: a
	// watch can miss what happens on some file systems (FUSE, network), and then
	// the follower is no slower than one tick at the default interval.
	logWatchFallback = time.Second
)

// FollowerOptions configures a Follower.
type FollowerOptions struct {
	// Path is the Redis logfile.
	Path string
	// Backscan is how many bytes of the existing file's tail are read at start
	// to learn recent causes; 0 starts at the end.
	Backscan int64
	// Poll is how often the file is checked when inotify is unavailable; 0 means
	// 100ms. With inotify, changes wake the follower at once and it polls every
	// max(Poll, 1s) only in case an event was missed.
	Poll time.Duration
	// Location is Redis's time zone for line timestamps; nil means time.Local.
	Location *time.Location
	// Now gives the time for lines without a usable timestamp; nil means time.Now.
	Now func() time.Time
	// Wake, when set, is the channel wake-ups go to (buffer 1), so an owner that
	// replaces followers keeps one channel and needs no relay goroutine.
	Wake chan struct{}
}

// Follower tails one Redis log file and keeps the newest event of each kind,
// so a policy can name the cause of a failure Redis only reports in its log
// (INFO says a BGSAVE failed, the log says "No space left on device").
//
// It reads with os.Stat and plain reads, woken by inotify on the log's directory
// where that works (see logWatch) and polling otherwise: polling works on any file
// system, inotify lets an idle follower sleep and sees a new line at once.
type Follower struct {
	opts FollowerOptions
	wake chan struct{}

	mu   sync.Mutex
	err  error
	last map[LogKind]LogEvent
}

// NewFollower returns a Follower for opts.Path; nothing happens until Run.
func NewFollower(opts FollowerOptions) *Follower {
	if opts.Poll <= 0 {
		opts.Poll = defaultLogPoll
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Backscan < 0 {
		opts.Backscan = 0
	}
	return &Follower{
		opts: opts,
		wake: wakeChan(opts.Wake),
		last: make(map[LogKind]LogEvent),
	}
}

// Wake receives a value when a recognised line arrives, so the caller can run
// a tick at once instead of waiting for its interval. Sends never block: several
// lines between two receives coalesce into one wake-up.
func (f *Follower) Wake() <-chan struct{} { return f.wake }

// Reading returns a copy of the follower's state; it is safe to call while Run
// is running.
func (f *Follower) Reading() LogReading {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := make(map[LogKind]LogEvent, len(f.last))
	for k, v := range f.last {
		last[k] = v
	}
	return LogReading{Source: LogFile, Path: f.opts.Path, Err: f.err, Last: last}
}

// Run follows the file until ctx is done and then returns nil. A missing or
// unreadable file is not fatal: it is reported in Reading().Err and retried on
// every poll, because Redis recreates its log on the next line it writes. Run
// must not be called concurrently with itself.
func (f *Follower) Run(ctx context.Context) error {
	if f.opts.Path == "" {
		return errors.New("follow redis log: empty path")
	}
	t := &tailer{f: f, buf: make([]byte, logReadChunk)}
	defer t.close()

	// Where inotify works, changes wake the follower at once and the poll only
	// runs as a fallback every logWatchFallback (or Poll, if longer), in case an
	// event was missed; elsewhere it polls every Poll as before.
	w, err := newLogWatch(f.opts.Path)
	if err == nil {
		defer func() {
			if w != nil {
				w.close()
			}
		}()
	}
	fallback := max(f.opts.Poll, logWatchFallback)
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		t.poll(ctx)
		if w != nil {
			if err := w.wait(ctx, fallback); err != nil {
				w.close()
				w = nil
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if ticker == nil {
			ticker = time.NewTicker(f.opts.Poll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func (f *Follower) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// handleLine parses one complete line and records it. Lines read by the
// backscan (silent) teach causes but do not wake: they happened before we
// started and the caller's first tick will see them anyway.
func (f *Follower) handleLine(line []byte, silent bool) {
	ev, ok := ParseLogLine(string(line), f.opts.Location)
	if !ok {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = f.opts.Now()
	}
	f.mu.Lock()
	f.last[ev.Kind] = carryCause(f.last[ev.Kind], ev)
	f.mu.Unlock()
	if silent || !ev.Kind.Wakes() {
		return
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// carryCause lets "Background AOF rewrite terminated with error", which the
// parent logs without a reason, keep the reason the rewrite child logged just
// before it (e.g. "No space left on device"); otherwise the newest line would
// always erase the only cause Redis gave.
func carryCause(prev, ev LogEvent) LogEvent {
	if ev.Kind != LogAOFRewriteError || ev.Cause != "" || prev.Cause == "" {
		return ev
	}
	if d := ev.Time.Sub(prev.Time); d >= 0 && d <= causeCarryWindow {
		ev.Cause = prev.Cause
	}
	return ev
}

// tailer is Run's private state; only the Run goroutine touches it.
type tailer struct {
	f   *Follower
	buf []byte

	file *os.File
	info os.FileInfo // of file when it was opened, to detect a rename rotation
	off  int64       // next byte of file to read

	// What is remembered across a close, to decide where to resume on reopen.
	prevInfo   os.FileInfo
	prevOff    int64
	prevSkip   bool // prevOff is inside a line that cannot be read whole
	everOpened bool
	sawMissing bool // the path was absent since the file was last open

	line    []byte // the incomplete last line, at most maxLogLineBytes
	skip    bool   // drop bytes up to the next newline (line started before us)
	dropped bool   // the current line overflowed; the rest is dropped
}

// close remembers where the file was left, rewound to the start of an
// unfinished line so that a resume reads that line whole.
func (t *tailer) close() {
	if t.file != nil {
		t.prevInfo, t.prevOff, t.prevSkip = t.info, t.off, t.skip || t.dropped
		if !t.prevSkip {
			t.prevOff -= int64(len(t.line))
		}
		_ = t.file.Close() // read-only: nothing to lose on close
		t.file = nil
	}
	t.resetLine()
}

func (t *tailer) resetLine() {
	t.line = t.line[:0]
	t.skip = false
	t.dropped = false
}

// poll does one round: open if needed, detect rotation or truncation, read
// what was appended.
func (t *tailer) poll(ctx context.Context) {
	if t.file == nil && !t.open(ctx) {
		return
	}

	st, statErr := os.Stat(t.f.opts.Path)
	if statErr == nil && os.SameFile(st, t.info) {
		if st.Size() < t.off {
			// copytruncate: the same file was cut. Whatever Redis appended
			// since is at the start. (If Redis wrote past our old offset before
			// this poll, the truncation is invisible; polling keeps that window
			// to one interval.)
			t.off = 0
			t.resetLine()
		}
		if st.Size() == t.off {
			// Nothing appended: the usual poll, and a read would only return EOF.
			return
		}
		if err := t.readToEOF(ctx, -1, false); err != nil {
			t.fail(err)
		}
		return
	}

	// The path now names another file or nothing: finish the old file first,
	// since Redis may have written to it just before the rename. A read error
	// on a file being left behind no longer matters.
	_ = t.readToEOF(ctx, -1, false)
	t.close()
	if statErr != nil {
		t.fail(statErr)
		return
	}
	// Read the new file now: woken by inotify, there may be no further event
	// (and so no further poll) for what is already in it.
	if t.open(ctx) {
		if err := t.readToEOF(ctx, -1, false); err != nil {
			t.fail(err)
		}
	}
}

// fail closes the file, so the next poll starts over with open, and reports
// err until then.
func (t *tailer) fail(err error) {
	t.close()
	if errors.Is(err, fs.ErrNotExist) {
		t.sawMissing = true
	}
	t.f.setErr(fmt.Errorf("follow redis log: %w", err))
}

// open opens the path and places the offset: resume where we were if it is
// the same file, the start of a new file, or the end (after the backscan) of a
// file we are seeing for the first time. It reports whether a file is open.
func (t *tailer) open(ctx context.Context) bool {
	// Never a plain open: a FIFO at the path would block it, and with it the
	// follower's shutdown (see openRegular).
	file, info, err := openRegular(t.f.opts.Path)
	if err != nil {
		t.fail(err)
		return false
	}
	t.file, t.info = file, info
	t.resetLine()

	size := info.Size()
	switch {
	// After the path was missing, an equal inode number may be a new file
	// reusing a freed inode, so identity is only trusted without a gap.
	case t.prevInfo != nil && !t.sawMissing && os.SameFile(info, t.prevInfo) && size >= t.prevOff:
		t.off, t.skip = t.prevOff, t.prevSkip
	case t.everOpened || t.sawMissing:
		// A file that appeared after ours vanished or was replaced is new:
		// all of it is news.
		t.off = 0
	default:
		if err := t.startNearEnd(ctx, size); err != nil {
			t.fail(err)
			return false
		}
	}
	t.everOpened, t.sawMissing = true, false
	t.f.setErr(nil)
	return true
}

// startNearEnd reads the last Backscan bytes silently, starting at the first
// full line, and leaves the offset at size. Reading from one byte before the
// start tells whether the start is already at a line boundary.
func (t *tailer) startNearEnd(ctx context.Context, size int64) error {
	start := max(size-t.f.opts.Backscan, 0)
	if start == 0 {
		t.off = 0
	} else {
		t.off = start - 1
		t.skip = true
	}
	return t.readToEOF(ctx, size, true)
}

// readToEOF reads from t.off to the end of the file, or to limit when it is
// not negative, and hands complete lines to the follower.
func (t *tailer) readToEOF(ctx context.Context, limit int64, silent bool) error {
	for ctx.Err() == nil {
		p := t.buf
		if limit >= 0 {
			if t.off >= limit {
				return nil
			}
			p = p[:min(int64(len(p)), limit-t.off)]
		}
		n, err := t.file.ReadAt(p, t.off)
		t.off += int64(n)
		t.feed(p[:n], silent)
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", t.f.opts.Path, err)
		}
	}
	return nil
}

// feed splits p into lines, keeping an unfinished last line for the next
// read and at most maxLogLineBytes of any line.
func (t *tailer) feed(p []byte, silent bool) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.appendLine(p)
			return
		}
		if t.skip {
			t.skip = false
		} else {
			t.appendLine(p[:i])
			t.f.handleLine(t.line, silent)
		}
		t.line = t.line[:0]
		t.dropped = false
		p = p[i+1:]
	}
}

func (t *tailer) appendLine(p []byte) {
	if t.skip || t.dropped {
		return
	}
	if room := maxLogLineBytes - len(t.line); len(p) > room {
		p = p[:room]
		t.dropped = true
	}
	t.line = append(t.line, p...)
}

func wakeChan(c chan struct{}) chan struct{} {
	if c != nil {
		return c
	}
	return make(chan struct{}, 1)
}
