// Package policy is redis-guardian's knowledge, as pure functions: Diagnose turns a
// monitor.Snapshot into findings (what is wrong, the likely cause, the fix), and
// Decide turns findings and remembered state into decisions for pkg/remediate.
// Nothing here does I/O or reads the clock; time is passed in, so every rule is
// table-tested.
package policy
