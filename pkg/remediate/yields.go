package remediate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// An operator who sets a held setting back takes it over for the rest of the
// remedy's episode (policy.Shared's yields). Kept only in memory, a guardian
// restarted in that episode (a crash, an upgrade, the watchdog) took it back at
// its first tick: the soak saw stop-writes-on-bgsave-error set to no again 9 s
// after an operator set it to yes, by a guardian restarted in between. So the
// yields live beside the ledger, state_dir/<instance>.yields.json, written
// under the ledger's lock with the same care, and read back at start.

// YieldsPath is where an instance's yields to operators are kept.
func YieldsPath(stateDir, instance string) string {
	return filepath.Join(stateDir, instance+".yields.json")
}

// maxYieldsSize bounds the yields file: a handful of entries.
const maxYieldsSize = 64 << 10

type yieldsFile struct {
	Version int         `json:"version"`
	Yields  []yieldJSON `json:"yields"`
}

type yieldJSON struct {
	Remedy  string    `json:"remedy"`
	Setting string    `json:"setting"`
	At      time.Time `json:"at"`
}

// SaveYields replaces the kept yields with ys (none: the file goes). Not
// fsynced: a yield lost to a host crash costs the operator's choice for one
// episode, never a setting.
func (l *FileLedger) SaveYields(ys []policy.Yield) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	path := yieldsPath(l.path)
	if len(ys) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	}
	f := yieldsFile{Version: 1}
	for _, y := range ys {
		f.Yields = append(f.Yields, yieldJSON{Remedy: y.Remedy, Setting: y.Setting, At: y.At})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode yields: %w", err)
	}
	_, err = writeAtomic(path, append(b, '\n'), false)
	return err
}

// Yields reads the kept yields. The file is input from a directory another uid
// may write: it is read without following a link, bounded, and an entry that
// names no remedy's setting is refused with the rest.
func (l *FileLedger) Yields() ([]policy.Yield, error) {
	return readYields(yieldsPath(l.path))
}

// yieldsPath is the yields file beside a ledger file.
func yieldsPath(ledger string) string {
	dir, base := filepath.Split(ledger)
	const suffix = ".ledger.json"
	if len(base) > len(suffix) && base[len(base)-len(suffix):] == suffix {
		base = base[:len(base)-len(suffix)]
	}
	return filepath.Join(dir, base+".yields.json")
}

// ReadYields reads the yields kept in state_dir for an instance, without the
// ledger's lock, for a look (status): it never writes. No file is no yields.
func ReadYields(stateDir, instance string) ([]policy.Yield, error) {
	return readYields(YieldsPath(stateDir, instance))
}

func readYields(path string) ([]policy.Yield, error) {
	f, err := openRead(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read yields: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxYieldsSize+1))
	if err != nil {
		return nil, fmt.Errorf("read yields: %w", err)
	}
	return decodeYields(path, b)
}

// decodeYields parses a yields file's bytes (path names it in errors).
func decodeYields(path string, b []byte) ([]policy.Yield, error) {
	if len(b) > maxYieldsSize {
		return nil, fmt.Errorf("yields file %s is larger than %d bytes: no guardian writes one that big", path, maxYieldsSize)
	}
	var yf yieldsFile
	if err := json.Unmarshal(b, &yf); err != nil {
		return nil, fmt.Errorf("yields file %s is corrupt: %w", path, boundedError{err})
	}
	if yf.Version != 1 {
		return nil, fmt.Errorf("yields file %s has version %d; this guardian reads version 1", path, yf.Version)
	}
	var out []policy.Yield
	for i, y := range yf.Yields {
		if !policy.Holds(y.Remedy, y.Setting) {
			return nil, fmt.Errorf("yields file %s, entry %d: remedy %s does not hold setting %s", path, i+1, policy.Quote(y.Remedy), policy.Quote(y.Setting))
		}
		out = append(out, policy.Yield{Remedy: y.Remedy, Setting: y.Setting, At: y.At})
	}
	return out, nil
}

// SaveYields keeps nothing for a MemLedger (dry-run): its guardian changes
// nothing to take back.
func (l *MemLedger) SaveYields([]policy.Yield) error { return nil }

// Yields of a MemLedger: none.
func (l *MemLedger) Yields() ([]policy.Yield, error) { return nil, nil }

// yieldKeeper is a ledger that keeps the yields across restarts (FileLedger,
// and MemLedger, which keeps none).
type yieldKeeper interface {
	SaveYields([]policy.Yield) error
	Yields() ([]policy.Yield, error)
}

// KeptYields are the yields a previous run of the guardian kept: the loop
// hands them to the policy at its first tick. Unreadable, they are logged and
// dropped: the yield is the operator's for one episode, and a guardian that
// cannot read it must not stop remediating.
func (e *Executor) KeptYields() []policy.Yield {
	k, ok := e.Ledger.(yieldKeeper)
	if !ok || e.DryRun {
		return nil
	}
	ys, err := k.Yields()
	if err != nil {
		e.Log.Warn("the yields to operators kept by the last run cannot be read; the remedies may take back a setting an operator took over in this episode", zap.Error(err))
		return nil
	}
	e.mu.Lock()
	e.keptYields = slices.Clone(ys)
	e.mu.Unlock()
	return ys
}

// KeepYields keeps the yields of the current episodes for the next run, when
// they changed since the last call.
func (e *Executor) KeepYields(ys []policy.Yield) {
	k, ok := e.Ledger.(yieldKeeper)
	if !ok || e.DryRun {
		return
	}
	e.mu.Lock()
	same := slices.EqualFunc(ys, e.keptYields, func(a, b policy.Yield) bool {
		return a.Remedy == b.Remedy && a.Setting == b.Setting && a.At.Equal(b.At)
	})
	e.mu.Unlock()
	if same {
		return
	}
	if err := k.SaveYields(ys); err != nil {
		e.Log.Warn("could not keep the yields to operators in the state dir: a restart of the guardian in this episode may take back what an operator took over", zap.Error(err))
		return
	}
	e.mu.Lock()
	e.keptYields = slices.Clone(ys)
	e.mu.Unlock()
}

// Yields are the yields to operators the executor last kept (status).
func (e *Executor) Yields() []policy.Yield {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.keptYields)
}
