package monitor

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// NotRegularError says a file the guardian reads (the Redis log, Redis's config
// file) is not a regular file, so it was not opened or was closed unread: the
// open of a FIFO blocks until a writer comes, and a read of one or of a device
// can block for ever, which would stall the tick, `check` and shutdown with it.
type NotRegularError struct {
	Path string
	// Type is the file's type in words: "FIFO", "character device", "directory"...
	Type string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is a %s, not a regular file: it is not read", e.Path, e.Type)
}

// FileTypeName names the type of a file mode in words, for messages.
func FileTypeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	default:
		return "special file"
	}
}

// openRegular opens path for reading only if it is a regular file, and never
// blocks doing so. A symlink to a regular file is fine (an admin may point the log
// path at the real file). The path is looked at first, so a device is never even
// opened (opening some has side effects); the open itself is non-blocking, so a
// FIFO swapped in between does not hang it, and the opened file is checked again
// with fstat, which is what counts. O_NONBLOCK changes nothing for a regular file.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, &NotRegularError{Path: path, Type: FileTypeName(st.Mode())}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err = f.Stat()
	if err != nil {
		_ = f.Close() // read-only: nothing to lose
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, &NotRegularError{Path: path, Type: FileTypeName(st.Mode())}
	}
	return f, st, nil
}

// maxSecretSize bounds a password file: a secret is a line, not a file's worth.
const maxSecretSize = 64 << 10

// readSecretFile reads a password file at connect time: a regular file (a FIFO
// swapped in would hang every dial), at most maxSecretSize bytes.
func readSecretFile(path string) ([]byte, error) {
	f, _, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretSize {
		return nil, fmt.Errorf("larger than %d bytes: not a password", maxSecretSize)
	}
	return b, nil
}
