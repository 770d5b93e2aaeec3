package supervisor

import (
	"os"
	"path/filepath"

	"github.com/redis-guardian/redis-guardian/pkg/events"
)

// RestoreOnStopMarker, in the state dir, makes the next stop restore every held
// change instead of keeping those whose reason persists. The package's removal
// script writes it before it stops the service: the daemon, which systemd runs,
// can reach Redis where the package manager's own scriptlets may not (rpm 4.20
// runs them without network), and a removed guardian must leave nothing behind.
const RestoreOnStopMarker = ".restore-on-stop"

func (s *Supervisor) restoreOnStop() bool {
	_, err := os.Stat(filepath.Join(s.cfg.StateDir, RestoreOnStopMarker))
	return err == nil
}

// stopForRemoval is the stop of a guardian whose package is being removed: every
// loop stops and restores everything its ledger holds.
func (s *Supervisor) stopForRemoval() {
	s.notify(s.notifier.Stopping("stopping for package removal: restoring every held change"))
	s.log.Warn("the package is being removed ("+RestoreOnStopMarker+" in the state dir): restoring every held change before stopping",
		events.Field(events.Stopping))
	s.stopAllRestoring("redis-guardian is being removed")
}
