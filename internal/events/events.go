// Package events forwards to pkg/events, where the event names now live (pkg/remediate
// exports them, so they must be importable from outside the module). It stays only
// for the internal/daemon tests that still import it; new code imports pkg/events,
// and this package goes once those tests do.
package events

import (
	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/pkg/events"
)

// Name is one event's name (events.Name).
type Name = events.Name

// Events of the watch loop.
const (
	FindingRaised  = events.FindingRaised
	FindingCleared = events.FindingCleared
	Unreachable    = events.Unreachable
	Back           = events.Back
	LogSource      = events.LogSource
)

// Events of the remedies (the executor).
const (
	RemedyApplied    = events.RemedyApplied
	RemedyUndone     = events.RemedyUndone
	RemedyFailed     = events.RemedyFailed
	RemedyYielded    = events.RemedyYielded
	RemedyHeld       = events.RemedyHeld
	RemedySuppressed = events.RemedySuppressed
)

// Events of the service.
const (
	Started        = events.Started
	Stopping       = events.Stopping
	Stopped        = events.Stopped
	Reloaded       = events.Reloaded
	ReloadFailed   = events.ReloadFailed
	PprofListening = events.PprofListening
)

// FieldKey is the key of the structured field that names an event.
const FieldKey = events.FieldKey

// Field is the structured field that names an event.
func Field(n Name) zap.Field { return events.Field(n) }
