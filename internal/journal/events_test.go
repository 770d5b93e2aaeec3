package journal_test

import (
	"testing"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/journal"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// TestEveryEventHasAMessageID: an event the code logs without an id would be
// invisible to `journalctl MESSAGE_ID=` queries and the catalog.
func TestEveryEventHasAMessageID(t *testing.T) {
	t.Parallel()
	for _, ev := range []string{
		daemon.EventFindingRaised, daemon.EventFindingCleared, daemon.EventUnreachable, daemon.EventBack,
		remediate.EventApplied, remediate.EventUndone, remediate.EventFailed, remediate.EventYielded, remediate.EventHeld,
		"started", "stopping", "reloaded", "reload_failed",
	} {
		if _, ok := journal.MessageIDs[ev]; !ok {
			t.Errorf("event %q has no MESSAGE_ID", ev)
		}
	}
}
