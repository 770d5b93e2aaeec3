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
	"sync"
	"syscall"
	"time"
)

// Change is one setting the guardian changed on a Redis.
type Change struct {
	Instance string    `json:"instance"`
	Addr     string    `json:"addr"`
	Setting  string    `json:"setting"`
	Original string    `json:"original"`
	Value    string    `json:"value"`
	Remedy   string    `json:"remedy"`
	Reason   string    `json:"reason"`
	Time     time.Time `json:"time"`
}

// Ledger is the durable record of held changes of one instance.
type Ledger interface {
	Record(c Change) error
	Remove(setting string) error
	Get(setting string) (Change, bool)
	All() []Change
}

type ledgerFile struct {
	Version int      `json:"version"`
	Changes []Change `json:"changes"`
}

// FileLedger keeps the ledger in state_dir/<instance>.json, written by atomic rename
// after fsync, so a SIGKILL at any moment leaves either the old or the new file.
type FileLedger struct {
	path string

	mu      sync.Mutex
	changes map[string]Change
}

var _ Ledger = (*FileLedger)(nil)

// LedgerPath is where an instance's ledger lives.
func LedgerPath(stateDir, instance string) string {
	return filepath.Join(stateDir, instance+".ledger.json")
}

// OpenFileLedger loads an instance's ledger, creating the state dir if needed. A
// ledger that cannot be parsed is an error, never silently reset: it may be the only
// record of a setting that must be restored.
func OpenFileLedger(stateDir, instance string) (*FileLedger, error) {
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	l := &FileLedger{path: LedgerPath(stateDir, instance), changes: map[string]Change{}}
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	var f ledgerFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("ledger %s is corrupt (fix or move it aside after checking the settings it names): %w", l.path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("ledger %s has version %d; this guardian reads version 1", l.path, f.Version)
	}
	for _, c := range f.Changes {
		l.changes[c.Setting] = c
	}
	return l, nil
}

// Path is the ledger file.
func (l *FileLedger) Path() string { return l.path }

// Record adds or replaces a change and makes it durable before returning.
func (l *FileLedger) Record(c Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, had := l.changes[c.Setting]
	l.changes[c.Setting] = c
	if err := l.flush(); err != nil {
		if had {
			l.changes[c.Setting] = prev
		} else {
			delete(l.changes, c.Setting)
		}
		return err
	}
	return nil
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
	if err := l.flush(); err != nil {
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

// flush writes the ledger: temp file, fsync, rename, fsync of the directory. An
// empty ledger is removed, so a clean state dir means nothing is held.
func (l *FileLedger) flush() error {
	dir := filepath.Dir(l.path)
	if len(l.changes) == 0 {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove empty ledger: %w", err)
		}
		return syncDir(dir)
	}
	b, err := json.MarshalIndent(ledgerFile{Version: 1, Changes: sorted(l.changes)}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ledger: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".ledger-*.tmp")
	if err != nil {
		return fmt.Errorf("create ledger temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := matchDirOwner(tmp, dir); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write ledger: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsync ledger: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close ledger: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		return fmt.Errorf("rename ledger into place: %w", err)
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
