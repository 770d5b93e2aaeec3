package monitor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// logWatch wakes a follower when its log file changes, through inotify on the
// file's directory (a watch on the directory, not the file, also sees the file being
// created, renamed away or replaced). It only says "look now": the follower's poll
// still decides what changed, so a missed or spurious event costs at most a delay
// until the fallback poll, never a wrong reading.
//
// Profiling showed the guardian's idle CPU was mostly the Go scheduler waking up for
// the 50 ms polls of each follower; with a watch, an idle follower sleeps.
type logWatch struct {
	f    *os.File
	name string // base name of the log file
	buf  []byte
}

// logWatchMask is every change of a directory entry that can matter to a follower.
const logWatchMask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// newLogWatch watches the directory of path. It fails where inotify is unavailable
// (no permission to read the directory, out of watches): the follower then polls.
func newLogWatch(path string) (*logWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init: %w", err)
	}
	dir := filepath.Dir(path)
	if _, err := unix.InotifyAddWatch(fd, dir, logWatchMask); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	// Non-blocking, so os.NewFile registers it with the runtime poller and reads
	// honour deadlines instead of holding a thread.
	return &logWatch{f: os.NewFile(uintptr(fd), "inotify:"+dir), name: filepath.Base(path), buf: make([]byte, 4096)}, nil
}

func (w *logWatch) close() { _ = w.f.Close() }

// wait returns when the log file (or the directory itself) changed, when fallback has
// passed, or when ctx is done. An error means the watch is broken and the follower
// must go back to polling.
func (w *logWatch) wait(ctx context.Context, fallback time.Duration) error {
	if err := w.f.SetReadDeadline(time.Now().Add(fallback)); err != nil {
		return fmt.Errorf("inotify deadline: %w", err)
	}
	// Cancellation moves the deadline to the past, which ends the read at once.
	stop := context.AfterFunc(ctx, func() { _ = w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		n, err := w.f.Read(w.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read inotify: %w", err)
		}
		if w.relevant(w.buf[:n]) {
			return nil
		}
	}
}

// relevant reports whether a batch of events touches the log file or the watched
// directory itself (a queue overflow counts: something may have been missed).
// Other files in the directory (a dump.rdb being written next to the log) must not
// turn into a poll per write.
func (w *logWatch) relevant(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:8])
		nameLen := int(binary.NativeEndian.Uint32(b[12:16]))
		end := unix.SizeofInotifyEvent + nameLen
		if end > len(b) {
			return true // a torn batch: look rather than guess
		}
		name := b[unix.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if mask&(unix.IN_Q_OVERFLOW|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 || len(name) == 0 || string(name) == w.name {
			return true
		}
		b = b[end:]
	}
	return false
}
