// Package events names every event the guardian logs, as the "event" field of a
// structured entry. The names are part of the product's interface: journal queries,
// the MESSAGE_ID table (internal/journal), the metrics and remediate.Executor's
// OnEvent key on them, so every event is a constant here and logged through Field,
// never as a string literal (a test scans the tree for literals). It lives under
// pkg/ because pkg/remediate exports it: code outside this module can use it.
package events

import "go.uber.org/zap"

// Name is one event's name.
type Name string

// Events of the watch loop.
const (
	FindingRaised  Name = "finding_raised"
	FindingCleared Name = "finding_cleared"
	Unreachable    Name = "redis_unreachable"
	Back           Name = "redis_back"
	LogSource      Name = "log_source"
)

// Events of the remedies (the executor).
const (
	RemedyApplied Name = "remedy_applied"
	RemedyUndone  Name = "remedy_undone"
	RemedyFailed  Name = "remedy_failed"
	RemedyYielded Name = "remedy_yielded"
	RemedyHeld    Name = "remedy_held"
	// RemedySuppressed: a limit (hourly cap, failure backoff) stopped a remedy
	// that wanted to act; once per episode.
	RemedySuppressed Name = "remedy_suppressed"
)

// Events of the service.
const (
	Started        Name = "started"
	Stopping       Name = "stopping"
	Stopped        Name = "stopped"
	Reloaded       Name = "reloaded"
	ReloadFailed   Name = "reload_failed"
	PprofListening Name = "pprof_listening"
)

// All is every event, for the tests that keep the journal's table complete.
var All = []Name{
	FindingRaised, FindingCleared, Unreachable, Back, LogSource,
	RemedyApplied, RemedyUndone, RemedyFailed, RemedyYielded, RemedyHeld, RemedySuppressed,
	Started, Stopping, Stopped, Reloaded, ReloadFailed, PprofListening,
}

// WithoutMessageID are the events that deliberately have no MESSAGE_ID, and why:
// each is informational and always next to one that has an id.
var WithoutMessageID = map[Name]string{
	LogSource:      "says once where the Redis log is read from; follows started",
	Stopped:        "the last line of a clean stop; stopping has the id",
	PprofListening: "a debugging aid, only when --pprof-listen is given",
}

// FieldKey is the key of the structured field that names an event.
const FieldKey = "event"

// Field is the structured field that names an event.
func Field(n Name) zap.Field { return zap.String(FieldKey, string(n)) }
