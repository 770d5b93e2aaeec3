package journal

import "github.com/redis-guardian/redis-guardian/pkg/events"

// MessageIDs gives the guardian's events a fixed 128-bit MESSAGE_ID, keyed by the
// event's name. They are part of the product's interface (queries, alerts and the
// catalog key on them): never change one. Each has an entry in
// packaging/journal/redis-guardian.catalog, which a test keeps in step with this
// table; events.WithoutMessageID lists the events that deliberately have none.
var MessageIDs = map[string]string{
	string(events.FindingRaised):    "5c4e3e365226495d9bd6cb19ce622a79",
	string(events.FindingCleared):   "9113efd6edf740c8b265a138aca5233a",
	string(events.RemedyApplied):    "b246f18264ac4ab085a3beef36fc67a8",
	string(events.RemedyUndone):     "3ab2e50a9bb14586aabfd6dd45bb9f35",
	string(events.RemedyFailed):     "f43e3dbe4dcd4b9fbe4b0bd5aa4cfae3",
	string(events.RemedyYielded):    "7ee9480adc3f42f38f31a1c6b1d2828c",
	string(events.RemedyHeld):       "edba3ee928c14d5ab779ef08aeaeae15",
	string(events.RemedySuppressed): "0f179eb98a374f91bf122a3e6be29cb9",
	string(events.Unreachable):      "420b87d8af574fd6b735c8ad4cb47dce",
	string(events.Back):             "e82521f2fa9f4a15992c20d5cc0f5145",
	string(events.Started):          "ccb1ca2fce3942e28a60e3d90ef720a1",
	string(events.Stopping):         "792f7c20ca314048ae5d4ae756725f58",
	string(events.Reloaded):         "627a2c1f45d3439f8a51377cd60f4cb1",
	string(events.ReloadFailed):     "8a68da82103143a09ec21f9bbc1a8f7b",
}
