package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// restoreTimeout bounds the restore of one instance: a Redis that does not answer
// keeps its entries in the ledger rather than holding up the package's removal.
const restoreTimeout = 10 * time.Second

// Restore undoes every change held in the ledgers of cfg's instances (`redis-guardian
// restore`, the package's removal script) and returns how many it processed. A
// change that cannot be restored stays in its ledger; the error names it.
func Restore(ctx context.Context, cfg *config.Config, log *zap.Logger) (int, error) {
	var errs []error
	total := 0
	for _, in := range cfg.Instances {
		_, lerr := os.Lstat(remediate.LedgerPath(cfg.StateDir, in.Name))
		_, yerr := os.Lstat(remediate.YieldsPath(cfg.StateDir, in.Name))
		if errors.Is(lerr, os.ErrNotExist) && errors.Is(yerr, os.ErrNotExist) {
			continue
		}
		b, err := instance.Build(cfg, in, instance.Options{Log: log, Timeout: 5 * time.Second})
		if errors.Is(err, remediate.ErrLocked) {
			// A running guardian would take a remedy again right after the restore
			// while its cause lasts, and two writers would lose ledger updates.
			errs = append(errs, fmt.Errorf("%w: a redis-guardian is running on this state dir; stop it first (systemctl stop redis-guardian, or redis-guardian@NAME), then restore", err))
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if fl, ok := b.Ledger.(*remediate.FileLedger); ok && fl.Insecure() != nil {
			// Still restored: every entry is one a remedy makes (checked on load).
			log.Warn("the state dir or ledger can be written by other users: chmod go-w them",
				zap.String("instance", in.Name), zap.String("ledger", fl.Path()), zap.Error(fl.Insecure()))
		}
		total += len(b.Ledger.All())
		rctx, cancel := context.WithTimeout(ctx, restoreTimeout)
		if err := b.Executor.RestoreAll(rctx, "redis-guardian restore"); err != nil {
			errs = append(errs, fmt.Errorf("instance %s: %w", in.Name, err))
		} else if fl, ok := b.Ledger.(*remediate.FileLedger); ok {
			// Everything is given back: the next guardian starts over, with no
			// setting left given over to an operator (a removal, then a
			// reinstall months later, must not inherit them).
			if err := fl.SaveYields(nil); err != nil {
				errs = append(errs, fmt.Errorf("instance %s: %w", in.Name, err))
			}
		}
		cancel()
		b.Close()
	}
	return total, errors.Join(errs...)
}
