package journal

// MessageIDs gives every event the guardian logs a fixed 128-bit MESSAGE_ID. They
// are part of the product's interface (queries, alerts and the catalog key on them):
// never change one. Each has an entry in packaging/journal/redis-guardian.catalog,
// which a test keeps in step with this table.
var MessageIDs = map[string]string{
	"finding_raised":    "5c4e3e365226495d9bd6cb19ce622a79",
	"finding_cleared":   "9113efd6edf740c8b265a138aca5233a",
	"remedy_applied":    "b246f18264ac4ab085a3beef36fc67a8",
	"remedy_undone":     "3ab2e50a9bb14586aabfd6dd45bb9f35",
	"remedy_failed":     "f43e3dbe4dcd4b9fbe4b0bd5aa4cfae3",
	"remedy_yielded":    "7ee9480adc3f42f38f31a1c6b1d2828c",
	"remedy_held":       "edba3ee928c14d5ab779ef08aeaeae15",
	"redis_unreachable": "420b87d8af574fd6b735c8ad4cb47dce",
	"redis_back":        "e82521f2fa9f4a15992c20d5cc0f5145",
	"started":           "ccb1ca2fce3942e28a60e3d90ef720a1",
	"stopping":          "792f7c20ca314048ae5d4ae756725f58",
	"reloaded":          "627a2c1f45d3439f8a51377cd60f4cb1",
	"reload_failed":     "8a68da82103143a09ec21f9bbc1a8f7b",
}
