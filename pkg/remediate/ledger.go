// Package remediate holds everything redis-guardian writes: it carries out policy
// decisions against Redis and the host. Every CONFIG SET is recorded in a ledger on
// disk BEFORE it is applied, with the original value, so nothing the guardian
// changes can outlive it unnoticed: a restart reconciles the ledger and `restore`
// undoes it.
package remediate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Change is one setting the guardian changed on a Redis.
type Change struct {
	Instance string `json:"instance"`
	// Addr, RunID and ConfigFile say which Redis the change belongs to: reconcile
	// and undo act only on that one. Addr is redacted (no password).
	Addr       string    `json:"addr"`
	RunID      string    `json:"run_id,omitempty"`
	ConfigFile string    `json:"config_file,omitempty"`
	Setting    string    `json:"setting"`
	Original   string    `json:"original"`
	Value      string    `json:"value"`
	Remedy     string    `json:"remedy"`
	Reason     string    `json:"reason"`
	Time       time.Time `json:"time"`
	// Applied is set once the guardian has seen its value live on that Redis; a
	// later revert to Original is then someone's choice, not a change never made.
	Applied bool `json:"applied,omitempty"`
	// FileValue is what the config file said for the setting when the change was
	// made ("" when unknown or absent): if the file says Value after the hold, a
	// CONFIG REWRITE wrote it there and the guardian puts the file right.
	FileValue string `json:"file_value,omitempty"`
}

// Ledger is the durable record of held changes of one instance.
type Ledger interface {
	Record(c Change) error
	// Stage records c where any reader finds it (a restarted guardian, `restore`)
	// without waiting for the disk; the returned sync makes it durable. It is for a
	// change that ends rejected writes: a slow disk's fsync must not keep them
	// rejected. On error, nothing changed.
	Stage(c Change) (sync func() error, err error)
	Remove(setting string) error
	Get(setting string) (Change, bool)
	All() []Change
	// Close releases the ledger (its lock); the record stays on disk.
	Close() error
}

// ErrStateDir means the state dir cannot be written now: the guardian would
// fail to record a change at the moment it must make one, so it says so at start.
var ErrStateDir = errors.New("the state dir is not writable")

// ErrLocked means another process (a running guardian, or a restore) holds the ledger.
var ErrLocked = errors.New("the ledger is in use by another redis-guardian process")

// reserveSize is the space kept in reserve beside each ledger: when the state dir's
// filesystem is full (the commonest cause of a failed save, and /var/lib/redis and
// /var/lib/redis-guardian share /var in every package install), the reserve is given
// up so the ledger can still record the change that lifts MISCONF.
const reserveSize = 64 << 10

type ledgerFile struct {
	Version int      `json:"version"`
	Changes []Change `json:"changes"`
}

// FileLedger keeps the ledger in state_dir/<instance>.ledger.json, written by atomic
// rename after fsync (Stage: fsync after the rename), so a SIGKILL at any moment
// leaves either the old or the new file. An exclusive lock
// (state_dir/<instance>.lock) makes its process the only writer, and a reserve file
// (state_dir/<instance>.reserve) keeps room to write it on a full disk.
type FileLedger struct {
	path    string
	reserve string
	lock    *os.File

	mu      sync.Mutex
	changes map[string]Change
	// ReserveErr is why the reserve could not be made (the disk was full at start);
	// it is made again at the next write that succeeds.
	reserveErr error
}

var _ Ledger = (*FileLedger)(nil)

// LedgerPath is where an instance's ledger lives.
func LedgerPath(stateDir, instance string) string {
	return filepath.Join(stateDir, instance+".ledger.json")
}

// OpenFileLedger loads an instance's ledger, creating the state dir if needed. It
// takes the ledger's lock (ErrLocked when another process has it) and checks that
// the state dir can be written now, not at the worst moment. A ledger that cannot
// be parsed is an error, never silently reset or rewritten: it may be the only
// record of a setting that must be restored.
func OpenFileLedger(stateDir, instance string) (*FileLedger, error) {
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrStateDir, stateDir, err)
	}
	lock, err := lockLedger(filepath.Join(stateDir, instance+".lock"))
	if err != nil {
		return nil, err
	}
	l := &FileLedger{path: LedgerPath(stateDir, instance), reserve: filepath.Join(stateDir, instance+".reserve"), lock: lock, changes: map[string]Change{}}
	if err := l.load(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	removeStaleTemps(stateDir, filepath.Base(l.path))
	if err := l.makeReserve(); err != nil {
		if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
			_ = lock.Close()
			return nil, fmt.Errorf("%w: %s: %w", ErrStateDir, stateDir, err)
		}
		// A full disk at start-up: the guardian still runs (Redis's own failing
		// save frees its temp file), and the reserve is made at the next write.
		l.reserveErr = err
	}
	return l, nil
}

// tempPattern names a ledger's temp files after the ledger, so each instance
// removes only its own (another instance's may be in the middle of a write).
func tempPattern(ledger string) string { return "." + ledger + "-*.tmp" }

// removeStaleTemps removes the temp files a killed writer of this ledger left
// behind (a SIGKILL between create and rename). Under the ledger's lock no
// writer of this ledger runs, so every one of them is stale.
func removeStaleTemps(stateDir, ledger string) {
	stale, _ := filepath.Glob(filepath.Join(stateDir, tempPattern(ledger)))
	for _, p := range stale {
		_ = os.Remove(p)
	}
}

// lockLedger takes the ledger's lock file, writing the holder's pid into it so a
// refused process can say who holds it.
func lockLedger(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("%w: open ledger lock: %w", ErrStateDir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s holds %s)", ErrLocked, strings.TrimSpace(string(holder)), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = matchDirOwner(f, filepath.Dir(path))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func (l *FileLedger) load() error {
	changes, err := ReadLedger(l.path)
	if err != nil {
		return err
	}
	for _, c := range changes {
		l.changes[c.Setting] = c
	}
	return nil
}

// ReadLedger reads a ledger file without taking its lock, for a look at what a
// running guardian holds (status, tests): it never writes. A missing file is an
// empty ledger.
func ReadLedger(path string) ([]Change, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	var f ledgerFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("ledger %s is corrupt (fix or move it aside after checking the settings it names): %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("ledger %s has version %d; this guardian reads version 1 (a newer guardian wrote it: upgrade, or restore with that version)", path, f.Version)
	}
	return f.Changes, nil
}

// makeReserve makes sure the reserve file exists with its full size, its blocks
// allocated (written and fsynced, so a filesystem without fallocate gets them too).
func (l *FileLedger) makeReserve() error {
	if st, err := os.Stat(l.reserve); err == nil && st.Size() >= reserveSize {
		return nil
	}
	f, err := os.OpenFile(l.reserve, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("create ledger reserve: %w", err)
	}
	_ = matchDirOwner(f, filepath.Dir(l.reserve))
	_, werr := f.WriteAt(make([]byte, reserveSize), 0)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if werr != nil {
		_ = os.Remove(l.reserve) // a half reserve would only pretend
		return fmt.Errorf("write ledger reserve: %w", werr)
	}
	return cerr
}

// ReserveErr says why no reserve exists now (nil when it does).
func (l *FileLedger) ReserveErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserveErr
}

// Close releases the ledger's lock.
func (l *FileLedger) Close() error {
	if l.lock == nil {
		return nil
	}
	err := l.lock.Close()
	l.lock = nil
	return err
}

// Path is the ledger file.
func (l *FileLedger) Path() string { return l.path }

// Record adds or replaces a change and makes it durable before returning.
func (l *FileLedger) Record(c Change) error {
	sync, err := l.stage(c, true)
	if err != nil {
		return err
	}
	return sync()
}

// Stage adds or replaces a change in the ledger file (written and renamed into
// place, so a guardian killed right after finds it) and returns the fsync of the
// file and its directory, which a host crash needs.
func (l *FileLedger) Stage(c Change) (func() error, error) {
	return l.stage(c, false)
}

func (l *FileLedger) stage(c Change, durable bool) (func() error, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, had := l.changes[c.Setting]
	l.changes[c.Setting] = c
	sync, err := l.flush(durable)
	if err != nil {
		if had {
			l.changes[c.Setting] = prev
		} else {
			delete(l.changes, c.Setting)
		}
		return nil, err
	}
	return sync, nil
}

// Remove drops a change and makes that durable.
func (l *FileLedger) Remove(setting string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, had := l.changes[setting]
	if !had {
		return nil
	}
	delete(l.changes, setting)
	if _, err := l.flush(true); err != nil {
		l.changes[setting] = prev
		return err
	}
	return nil
}

// Get returns the change of a setting.
func (l *FileLedger) Get(setting string) (Change, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.changes[setting]
	return c, ok
}

// All returns every held change, sorted by setting.
func (l *FileLedger) All() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return sorted(l.changes)
}

func sorted(m map[string]Change) []Change {
	out := make([]Change, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Setting < out[j].Setting })
	return out
}

// matchDirOwner gives a ledger written by root (`sudo redis-guardian restore`,
// the package's removal script) the owner of the state dir, so the service, which
// runs as that user, can still read and rewrite it afterwards.
func matchDirOwner(f *os.File, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat state dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give the ledger the state dir's owner: %w", err)
	}
	return nil
}

// flush writes the ledger. On a full disk it gives up the reserve and writes
// again: recording a change must not fail for want of space. The reserve is made
// again at the next write that finds room. A durable write is synced before
// flush returns (the returned func is then a no-op); otherwise the caller syncs.
func (l *FileLedger) flush(durable bool) (func() error, error) {
	sync, err := l.write(durable)
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		if rerr := os.Remove(l.reserve); rerr == nil {
			_ = syncDir(filepath.Dir(l.reserve))
			l.reserveErr = fmt.Errorf("given up to record a change on a full disk: %w", err)
			sync, err = l.write(durable)
		}
	}
	if err != nil || l.reserveErr == nil {
		return sync, err
	}
	if durable {
		l.remakeReserve()
		return sync, nil
	}
	// Remaking the reserve writes and fsyncs 64 KiB: after the change, not before.
	return func() error {
		serr := sync()
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.reserveErr != nil {
			l.remakeReserve()
		}
		return serr
	}, nil
}

// remakeReserve makes the reserve again after it was given up; the caller holds mu.
func (l *FileLedger) remakeReserve() {
	if err := l.makeReserve(); err == nil {
		l.reserveErr = nil
	}
}

// write writes the ledger: temp file, fsync, rename, fsync of the directory. An
// empty ledger is removed, so a clean state dir means nothing is held.
//
// When not durable, the file is renamed into place unsynced and both fsyncs are
// left to the returned func. The rename is atomic for every reader (a guardian
// killed at any moment restarts from the old or the new file); only a host crash
// before that func returns could lose the entry, and it takes a local Redis's
// CONFIG SET with it (that lives in Redis's memory until a CONFIG REWRITE).
func (l *FileLedger) write(durable bool) (func() error, error) {
	dir := filepath.Dir(l.path)
	if len(l.changes) == 0 {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove empty ledger: %w", err)
		}
		return noSync, syncDir(dir)
	}
	b, err := json.MarshalIndent(ledgerFile{Version: 1, Changes: sorted(l.changes)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode ledger: %w", err)
	}
	tmp, err := os.CreateTemp(dir, tempPattern(filepath.Base(l.path)))
	if err != nil {
		return nil, fmt.Errorf("create ledger temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := matchDirOwner(tmp, dir); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write ledger: %w", err)
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return nil, fmt.Errorf("fsync ledger: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("close ledger: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		return nil, fmt.Errorf("rename ledger into place: %w", err)
	}
	if durable {
		return noSync, syncDir(dir)
	}
	path := l.path
	return func() error { return syncFile(path, dir) }, nil
}

func noSync() error { return nil }

// syncFile makes a ledger renamed into place unsynced durable: its data, then
// its directory entry. A newer write may have replaced it meanwhile; syncing
// that one is as good (it holds this change too, or its removal).
func syncFile(path, dir string) error {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("open ledger to fsync: %w", err)
	default:
		serr := f.Sync()
		f.Close()
		if serr != nil {
			return fmt.Errorf("fsync ledger: %w", serr)
		}
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open state dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync state dir: %w", err)
	}
	return nil
}

// MemLedger is a ledger that only lives in memory, for dry-run: decisions see their
// "changes" held and are not repeated every tick, yet nothing touches the disk.
type MemLedger struct {
	mu      sync.Mutex
	changes map[string]Change
}

var _ Ledger = (*MemLedger)(nil)

// NewMemLedger returns an empty in-memory ledger.
func NewMemLedger() *MemLedger { return &MemLedger{changes: map[string]Change{}} }

// Record adds a change.
func (l *MemLedger) Record(c Change) error {
	l.mu.Lock()
	l.changes[c.Setting] = c
	l.mu.Unlock()
	return nil
}

// Remove drops a change.
func (l *MemLedger) Remove(setting string) error {
	l.mu.Lock()
	delete(l.changes, setting)
	l.mu.Unlock()
	return nil
}

// Stage records c; there is nothing to sync.
func (l *MemLedger) Stage(c Change) (func() error, error) {
	return noSync, l.Record(c)
}

// Get returns a change.
func (l *MemLedger) Get(setting string) (Change, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.changes[setting]
	return c, ok
}

// All returns every change.
func (l *MemLedger) All() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return sorted(l.changes)
}

// Close does nothing: a memory ledger has no lock.
func (l *MemLedger) Close() error { return nil }
