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
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
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
	// without waiting for the disk; the returned sync makes it durable. It is for an
	// urgent change (policy.Decision.Urgent: the lift that ends rejected writes, the
	// hold that stops an AOF rewrite storm): a slow disk's fsync must not keep the
	// damage going. On error, nothing changed.
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

// ErrUntrusted means a file in the state dir is not one the guardian may use: a
// symbolic link, something other than a regular file, a file with other hard
// links, or one owned by a user other than the guardian's or the state dir's. The
// state dir belongs to the redis uid, and root runs `restore`: a link planted there
// must never become root's write or chown.
var ErrUntrusted = errors.New("refused to use a file in the state dir")

// ErrLedgerRefused means the ledger names a change no remedy makes: a setting no
// remedy holds, or a value its remedy never sets. The ledger is input from a
// directory another uid can write; undoing such an entry would let that uid set
// any CONFIG on Redis (a password, appendonly no) through root's restore.
var ErrLedgerRefused = errors.New("the ledger names a change no remedy makes")

// maxLedgerSize bounds what is read of a ledger: a real one holds a few entries of a
// few hundred bytes each.
const maxLedgerSize = 1 << 20

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
	// insecure says the state dir or the ledger can be written by group or others.
	insecure error
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
	l.insecure = insecureMode(stateDir, l.path)
	removeStaleTemps(stateDir, filepath.Base(l.path))
	removeStaleTemps(stateDir, filepath.Base(YieldsPath(stateDir, instance)))
	if err := l.makeReserve(); err != nil {
		if errors.Is(err, ErrUntrusted) {
			_ = lock.Close()
			return nil, err
		}
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
	f, created, err := openOwned(path, os.O_RDWR, 0o640)
	if errors.Is(err, ErrUntrusted) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: open ledger lock: %w", ErrStateDir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := make([]byte, 32)
		n, _ := f.ReadAt(holder, 0)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s holds %s)", ErrLocked, strings.TrimSpace(string(holder[:n])), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if created {
		_ = matchDirOwner(f, filepath.Dir(path))
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// openOwned opens a file of the state dir for writing, creating it if missing,
// and never through a symbolic link: created says the guardian made it now (only
// then may it be chowned). An existing file must pass trusted; a link, a FIFO or
// another user's file is ErrUntrusted, and nothing was written.
func openOwned(path string, flag int, perm os.FileMode) (f *os.File, created bool, err error) {
	f, err = os.OpenFile(path, flag|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, perm)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	// O_NONBLOCK: a FIFO planted under the name must not hang the open.
	f, err = os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENXIO) {
			return nil, false, untrusted(path, "a symbolic link or a special file")
		}
		return nil, false, err
	}
	if err := trusted(f, path); err != nil {
		_ = f.Close()
		return nil, false, err
	}
	return f, false, nil
}

// openRead opens a file of the state dir for reading with the checks of openOwned.
func openRead(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, untrusted(path, "a symbolic link")
		}
		return nil, err
	}
	if err := trusted(f, path); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// trusted checks an open file of the state dir: a regular file with no other
// hard link (a link to a file elsewhere would make the guardian write that file),
// owned by the guardian's own user or by the state dir's owner (the service's user
// when root runs restore).
func trusted(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return untrusted(path, "not a regular file ("+fi.Mode().Type().String()+")")
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Nlink > 1 {
		return untrusted(path, fmt.Sprintf("a file with %d hard links", st.Nlink))
	}
	if int(st.Uid) == os.Geteuid() {
		return nil
	}
	if dfi, err := os.Stat(filepath.Dir(path)); err == nil {
		if dst, ok := dfi.Sys().(*syscall.Stat_t); ok && dst.Uid == st.Uid {
			return nil
		}
	}
	return untrusted(path, fmt.Sprintf("owned by uid %d, neither the guardian's nor the state dir's owner", st.Uid))
}

func untrusted(path, what string) error {
	return fmt.Errorf("%w: %s is %s; the guardian never follows a link or writes another user's file in its state dir (someone who can write the state dir may have planted it): move it aside, check what it points to, and start again", ErrUntrusted, path, what)
}

// insecureMode says whether the state dir or the ledger can be written by group or
// others: anyone who can write them can forge the record restore acts on.
func insecureMode(stateDir, ledger string) error {
	var bad []string
	for _, p := range []string{stateDir, ledger} {
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
			bad = append(bad, fmt.Sprintf("%s (mode %04o)", p, fi.Mode().Perm()))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("writable by group or others: %s", strings.Join(bad, ", "))
}

// Insecure says why the state dir or the ledger can be written by users other than
// the guardian's (nil when they cannot).
func (l *FileLedger) Insecure() error { return l.insecure }

// StateInsecure is FileLedger.Insecure for an instance whose ledger could not be
// opened: a ledger refused as forged is worth knowing to be forgeable too.
func StateInsecure(stateDir, instance string) error {
	return insecureMode(stateDir, LedgerPath(stateDir, instance))
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
	f, err := openRead(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, ErrUntrusted) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLedgerSize+1))
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return decodeLedger(path, b)
}

// decodeLedger parses the bytes of the ledger file at path (named in every error)
// and checks each entry against the remedies: the pure half of ReadLedger, which
// the fuzz target drives.
func decodeLedger(path string, b []byte) ([]Change, error) {
	if len(b) > maxLedgerSize {
		return nil, fmt.Errorf("ledger %s is larger than %d bytes: no guardian writes one that big (fix or move it aside after checking the settings it names)", path, maxLedgerSize)
	}
	var lf ledgerFile
	if err := json.Unmarshal(b, &lf); err != nil {
		return nil, fmt.Errorf("ledger %s is corrupt (fix or move it aside after checking the settings it names): %w", path, boundedError{err})
	}
	if lf.Version != 1 {
		return nil, fmt.Errorf("ledger %s has version %d; this guardian reads version 1 (a newer guardian wrote it: upgrade, or restore with that version)", path, lf.Version)
	}
	first := map[string]int{}
	for i, c := range lf.Changes {
		// A guardian keeps one entry per setting; of two, loading kept the last and
		// lost the other's original, the value to give back.
		if j, dup := first[c.Setting]; dup {
			return nil, fmt.Errorf("%w: ledger %s names setting %s twice (entries %d and %d), which no guardian writes; nothing in it is undone: check the settings it names against the live Redis, and who can write the state dir",
				ErrLedgerRefused, path, policy.Quote(c.Setting), j+1, i+1)
		}
		first[c.Setting] = i
		if err := policy.CheckHeld(c.Remedy, c.Setting, c.Original, c.Value); err != nil {
			return nil, fmt.Errorf("%w: ledger %s, entry %d (setting %s, remedy %s): %w; nothing in it is undone: check the settings it names against the live Redis, and who can write the state dir",
				ErrLedgerRefused, path, i+1, policy.Quote(c.Setting), policy.Quote(c.Remedy), err)
		}
	}
	return lf.Changes, nil
}

// maxDecodeErrorBytes bounds the message of a ledger's decode error: encoding/json
// and time put the offending value in theirs whole (a number or a time of 100 KB
// made a 200 KB message), and a ledger is input from a directory another uid can
// write, whose errors go to the journal and to root's terminal.
const maxDecodeErrorBytes = 256

// boundedError is a decode error with its message cut to maxDecodeErrorBytes; the
// error itself stays reachable (errors.As finds a *json.SyntaxError).
type boundedError struct{ err error }

func (e boundedError) Error() string {
	msg := e.err.Error()
	if len(msg) <= maxDecodeErrorBytes {
		return msg
	}
	return strings.ToValidUTF8(msg[:maxDecodeErrorBytes], "") + fmt.Sprintf("… (%d bytes)", len(msg))
}

func (e boundedError) Unwrap() error { return e.err }

// makeReserve makes sure the reserve file exists with its full size, its blocks
// allocated (written and fsynced, so a filesystem without fallocate gets them too).
func (l *FileLedger) makeReserve() error {
	f, created, err := openOwned(l.reserve, os.O_WRONLY, 0o640)
	if errors.Is(err, ErrUntrusted) {
		return err
	}
	if err != nil {
		return fmt.Errorf("create ledger reserve: %w", err)
	}
	if !created {
		if fi, err := f.Stat(); err == nil && fi.Size() >= reserveSize {
			return f.Close()
		}
	} else {
		_ = matchDirOwner(f, filepath.Dir(l.reserve))
	}
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
// runs as that user, can still read and rewrite it afterwards. It is called only
// on a file the guardian has just created itself (O_EXCL): never on a name another
// user could have planted.
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
	b, err := encodeLedger(l.changes)
	if err != nil {
		return nil, err
	}
	return writeAtomic(l.path, b, durable)
}

// writeAtomic writes a file of the state dir by rename of a temp file owned like
// the dir, fsynced first when durable (else the returned sync does it after).
func writeAtomic(path string, b []byte, durable bool) (func() error, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPattern(filepath.Base(path)))
	if err != nil {
		return nil, fmt.Errorf("create temp file for %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := matchDirOwner(tmp, dir); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return nil, fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("rename %s into place: %w", path, err)
	}
	if durable {
		return noSync, syncDir(dir)
	}
	return func() error { return syncFile(path, dir) }, nil
}

// encodeLedger is the content of a ledger file holding changes, sorted by setting.
func encodeLedger(changes map[string]Change) ([]byte, error) {
	b, err := json.MarshalIndent(ledgerFile{Version: 1, Changes: sorted(changes)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode ledger: %w", err)
	}
	return append(b, '\n'), nil
}

func noSync() error { return nil }

// syncFile makes a ledger renamed into place unsynced durable: its data, then
// its directory entry. A newer write may have replaced it meanwhile; syncing
// that one is as good (it holds this change too, or its removal).
func syncFile(path, dir string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
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
