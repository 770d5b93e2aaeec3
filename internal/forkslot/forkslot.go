// Package forkslot is the host's fork budget: at most N fork children of the
// host's Redis instances at once, whichever guardian watches them. A slot is a
// file <runtime_dir>/fork-slot-<i> (i < N) with a write lock on it; whoever
// holds the lock holds the slot and writes its instance name and pid into the
// file, so the others can say who makes them wait.
//
// The locks are open file description locks (fcntl F_OFD_SETLK), not flock():
// like flock they belong to one open of the file, so two instances of one
// guardian process (two opens) exclude each other exactly as two guardian
// processes do, and they go away when the holder's file is closed or its
// process dies (no stale slot after a crash). Unlike flock they can be queried
// without taking them (F_OFD_GETLK): reading who holds the slots for a snapshot
// never takes a slot for a moment, so it cannot make another instance's take
// fail.
//
// Saves that wait for a slot are served in turn: a waiting instance keeps a
// file <runtime_dir>/fork-wait-<pid>-<n> locked the same way, holding when it
// began to wait. The snapshot lists the live waiters (View), and the policy
// lets a save start only when no other instance has waited longer: without
// it, whichever instance ticked first after a child ended took the slot, and
// one server waited 1m35s while another saved twice.
package forkslot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Slots are one instance's view of the host's fork slots and its handle on
// them. The zero value is not usable: build one with New.
type Slots struct {
	dir   string
	n     int
	owner string

	mu   sync.Mutex
	held *os.File // the slot this instance holds, nil when none
	// wait is this instance's waiter file while it waits for a slot (nil when
	// it does not), waitName its name in dir (chosen at the first wait), since
	// when it began to wait.
	wait     *os.File
	waitName string
	since    time.Time
}

// waiters numbers the Slots of this process, for unique waiter file names.
var waiters atomic.Int64

// New returns the slots of dir, n of them, as the instance owner uses them.
func New(dir string, n int, owner string) *Slots {
	return &Slots{dir: dir, n: max(n, 1), owner: sanitize(owner)}
}

const (
	waitPrefix = "fork-wait-"
	// maxWaiters bounds how many waiter files a snapshot reads: one per
	// instance of the host that waits, a few in practice.
	maxWaiters = 256
	// staleWait is how old an unlocked waiter file (its holder died without
	// removing it) must be before anyone removes it: a file is locked within
	// microseconds of its creation, so a younger one may be on its way.
	staleWait = time.Minute
)

// sanitize replaces control characters (a holder's text goes into findings
// and logs).
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(s, "_"))
}

func (s *Slots) path(i int) string { return filepath.Join(s.dir, "fork-slot-"+strconv.Itoa(i)) }

// lock is the whole file, taken or queried as a write lock (Pid 0: OFD locks).
func lock(typ int16) unix.Flock_t { return unix.Flock_t{Type: typ, Whence: io.SeekStart} }

// Take takes a free slot for the instance. It reports true when the instance
// holds one afterwards (it may already have), false when every slot is held by
// others. An error says the slots could not be used at all.
func (s *Slots) Take() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		return true, nil
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return false, fmt.Errorf("make the fork slot dir: %w", err)
	}
	for i := range s.n {
		f, err := openSlot(s.path(i), unix.O_RDWR|unix.O_CREAT)
		if err != nil {
			return false, err
		}
		lk := lock(unix.F_WRLCK)
		err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			_ = f.Close()
			continue
		}
		if err != nil {
			_ = f.Close()
			return false, fmt.Errorf("lock fork slot %s: %w", s.path(i), err)
		}
		// Who holds it, for the others' findings; a failed write only costs
		// that text, not the slot.
		if f.Truncate(0) == nil {
			_, _ = f.WriteAt([]byte(fmt.Sprintf("%s %d\n", s.owner, os.Getpid())), 0)
		}
		s.held = f
		return true, nil
	}
	return false, nil
}

// Release gives the instance's slot back (nothing when it holds none).
func (s *Slots) Release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return nil
	}
	f := s.held
	s.held = nil
	// The name goes with the slot; closing unlocks. (A fork of this process
	// that has not exec'd yet holds the descriptor too, and the lock with it,
	// until its exec: the guardian starts no subprocess while it runs.)
	_ = f.Truncate(0)
	if err := f.Close(); err != nil {
		return fmt.Errorf("release fork slot %s: %w", f.Name(), err)
	}
	return nil
}

// Wait marks the instance as waiting for a slot since since (a save held off
// while every slot is held), for the other instances' snapshots; it keeps the
// mark until StopWaiting. Marking again with the same since does nothing.
func (s *Slots) Wait(since time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wait != nil && s.since.Equal(since) {
		return nil
	}
	if s.wait == nil {
		if s.waitName == "" {
			s.waitName = fmt.Sprintf("%s%d-%d", waitPrefix, os.Getpid(), waiters.Add(1))
		}
		if err := os.MkdirAll(s.dir, 0o750); err != nil {
			return fmt.Errorf("make the fork slot dir: %w", err)
		}
		p := filepath.Join(s.dir, s.waitName)
		f, err := openSlot(p, unix.O_RDWR|unix.O_CREAT)
		if err != nil {
			return err
		}
		lk := lock(unix.F_WRLCK)
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
			_ = f.Close()
			return fmt.Errorf("lock fork waiter file %s: %w", p, err)
		}
		s.wait = f
	}
	s.since = since
	text := fmt.Sprintf("%d %s %d\n", since.UnixNano(), s.owner, os.Getpid())
	if err := s.wait.Truncate(0); err != nil {
		return fmt.Errorf("write fork waiter file: %w", err)
	}
	if _, err := s.wait.WriteAt([]byte(text), 0); err != nil {
		return fmt.Errorf("write fork waiter file: %w", err)
	}
	return nil
}

// StopWaiting removes the instance's waiting mark (nothing when it has none).
func (s *Slots) StopWaiting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wait == nil {
		return
	}
	// Removed before it is closed (unlocked): nobody sees it unlocked and
	// takes it for a dead waiter's.
	_ = os.Remove(filepath.Join(s.dir, s.waitName))
	_ = s.wait.Close()
	s.wait, s.since = nil, time.Time{}
}

// maxBeyond bounds how many slot files past n a snapshot reads.
const maxBeyond = 64

// beyond lists the slots of dir numbered n or more that someone holds: a
// guardian of the host whose max_concurrent is larger than n (the files are
// the budget, so two guardians that disagree do not share one).
func beyond(dir string, names []string, n int) []string {
	var out []string
	for _, name := range names {
		i, err := strconv.Atoi(strings.TrimPrefix(name, "fork-slot-"))
		if !strings.HasPrefix(name, "fork-slot-") || err != nil || i < n || i > 1<<16 {
			continue
		}
		if len(out) == maxBeyond {
			break
		}
		if h, err := queryHolder(filepath.Join(dir, name)); err == nil && h != "" {
			out = append(out, fmt.Sprintf("%s held by %s", name, h))
		}
	}
	slices.Sort(out)
	return out
}

// Waiters lists the instances of the host that wait for a slot of dir, oldest
// first, changing nothing: what `status` shows.
func Waiters(dir string) []monitor.ForkWaiter { return readWaiters(dir, dirNames(dir), "", false) }

// dirNames lists the names in dir (none when it cannot be read).
func dirNames(dir string) []string {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	_ = d.Close()
	return names
}

// readWaiters lists the waiters among the names of dir but skip. A waiter
// file it cannot read is passed over: the turn is a courtesy, bounded by
// max_deferral, and must never stop a snapshot. With prune, the files dead
// waiters left are removed.
func readWaiters(dir string, names []string, skip string, prune bool) []monitor.ForkWaiter {
	var ws []monitor.ForkWaiter
	for _, name := range names {
		if !strings.HasPrefix(name, waitPrefix) || name == skip {
			continue
		}
		if len(ws) == maxWaiters {
			break
		}
		if w, ok := readWaiter(filepath.Join(dir, name), prune); ok {
			ws = append(ws, w)
		}
	}
	slices.SortFunc(ws, func(a, b monitor.ForkWaiter) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Holder, b.Holder)
	})
	return ws
}

// readWaiter reads one waiter file: its holder and since, when its lock is
// held. An unlocked one older than staleWait is a dead waiter's and removed.
func readWaiter(p string, prune bool) (monitor.ForkWaiter, bool) {
	f, err := openSlot(p, unix.O_RDONLY)
	if err != nil {
		return monitor.ForkWaiter{}, false
	}
	defer f.Close()
	lk := lock(unix.F_WRLCK)
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return monitor.ForkWaiter{}, false
	}
	if lk.Type == unix.F_UNLCK {
		if st, err := f.Stat(); err == nil && prune && time.Since(st.ModTime()) > staleWait {
			_ = os.Remove(p)
		}
		return monitor.ForkWaiter{}, false
	}
	buf := make([]byte, 128)
	n, _ := f.ReadAt(buf, 0)
	nanos, holder, ok := strings.Cut(strings.TrimSpace(string(buf[:n])), " ")
	ns, err := strconv.ParseInt(nanos, 10, 64)
	if !ok || err != nil || ns <= 0 {
		return monitor.ForkWaiter{}, false
	}
	return monitor.ForkWaiter{Holder: sanitize(holder), Since: time.Unix(0, ns)}, true
}

// View reads the slots for a snapshot: which this instance holds, who holds
// the others, and who waits for one. It takes nothing.
func (s *Slots) View() monitor.ForkView {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := dirNames(s.dir)
	v := monitor.ForkView{Known: true, Slots: s.n, Waiting: s.since,
		Waiters: readWaiters(s.dir, names, s.waitName, true), Beyond: beyond(s.dir, names, s.n)}
	for i := range s.n {
		if s.held != nil && s.held.Name() == s.path(i) {
			v.Mine = true
			continue
		}
		holder, err := queryHolder(s.path(i))
		if err != nil {
			return monitor.ForkView{Slots: s.n, Err: err.Error()}
		}
		if holder != "" {
			v.Others = append(v.Others, holder)
		}
	}
	return v
}

// Holders reads who holds each of the n slots of dir ("" for a free slot),
// taking nothing: what `status` shows, from any process of the host.
func Holders(dir string, n int) ([]string, error) {
	out := make([]string, max(n, 1))
	for i := range out {
		h, err := queryHolder(filepath.Join(dir, "fork-slot-"+strconv.Itoa(i)))
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// queryHolder returns who holds slot file p ("" when nobody does).
func queryHolder(p string) (string, error) {
	f, err := openSlot(p, unix.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	lk := lock(unix.F_WRLCK)
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return "", fmt.Errorf("query fork slot %s: %w", p, err)
	}
	if lk.Type == unix.F_UNLCK {
		return "", nil
	}
	buf := make([]byte, 128)
	n, _ := f.ReadAt(buf, 0)
	// Another uid of the host may have written it: printable text only.
	if h := sanitize(strings.TrimSpace(string(buf[:n]))); h != "" {
		return h, nil
	}
	return "?", nil
}

// openSlot opens a slot file without following a symlink (the runtime dir
// may be shared with other units) and insists on a regular file.
func openSlot(p string, flags int) (*os.File, error) {
	fd, err := unix.Open(p, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o660)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("open fork slot %s: %w", p, os.ErrNotExist)
		}
		return nil, fmt.Errorf("open fork slot %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat fork slot %s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("fork slot %s is not a regular file (%s)", p, st.Mode().Type())
	}
	return f, nil
}
