package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Def declares one remedy, in its own file: its name, the settings it may hold,
// its configuration with defaults (C, a plain struct embedding Limits whose
// pointer reads its keys with Configure), its own state (S, a plain value, the
// zero value at first) and its steps. The types are checked by the compiler:
// Decide gets the remedy's own *C and S, never an interface to assert. Define
// turns a Def into the Remedy that Registry lists.
type Def[C any, S any] struct {
	// Name is how the remedy appears in configuration, logs and metrics.
	Name string
	// Settings are the CONFIG settings the remedy may change and hold.
	Settings []Setting
	// Defaults returns a new configuration with the documented defaults. A remedy
	// is opt-in when its default Limits.Enabled is false.
	Defaults func() *C
	// Decide is the remedy's step over one snapshot: st is what it returned last
	// time (the zero S at first), and nobody else writes it. Shared is the one
	// mechanism for what several remedies need (rate limits, yields, backoff). It
	// returns decisions, findings about the remedy's own situation (a deferral held
	// too long), and its new state. It must be pure: cfg and st are not modified
	// (a state holding a slice or map copies it before changing it).
	Decide func(in Input, cfg *C, st S, sh *Shared) ([]Decision, []Finding, S)
	// Observe, when set, updates the state with how one of the remedy's own
	// decisions went (the BGSAVE retry counts attempts for its backoff).
	Observe func(st S, o Outcome) S
}

// noState is the state of a remedy that remembers nothing between ticks.
type noState struct{}

// Remedy is a Def with its types erased, as Registry lists it; Define makes one.
// The rest of the program needs to know about remedies only what is derived from
// Registry: the CONFIG GET list, the ledger's reconciliation and checks, metric
// label sets, configuration keys, and which remedies are on by default.
type Remedy interface {
	// Name is how the remedy appears in configuration, logs and metrics.
	Name() string
	// Settings are the CONFIG settings the remedy may change and hold.
	Settings() []Setting
	// DefaultConfig is a new configuration with the remedy's documented defaults.
	DefaultConfig() RemedyConfig

	// The steps, over erased configurations and states: only Define implements them.
	cloneConfig(c RemedyConfig) RemedyConfig
	decide(in Input, st any, sh *Shared) (ds []Decision, fs []Finding, next any, ran bool)
	observe(st any, o Outcome) (next any, ok bool)
}

// RemedyConfig is one remedy's configuration: a pointer to the plain struct its
// Def declares, so a test or the config loader edits it in place.
type RemedyConfig interface {
	// Configure reads the remedy's keys from p, validating each, over the values
	// already set (defaults, then the global section, then the instance's).
	Configure(p Params)
	// RateLimits are the enabled flag and rate limits every remedy has (Limits,
	// embedded, provides it).
	RateLimits() Limits
}

// Define turns a remedy's Def into the Remedy Registry lists. It is where the
// types are erased, once for every remedy: a configuration is taken from Input
// by the remedy's name and type, and a state from State by the remedy's name.
// P is inferred (*C): *C must implement RemedyConfig, or Define does not compile.
func Define[C any, S any, P interface {
	*C
	RemedyConfig
}](d Def[C, S]) Remedy {
	return defined[C, S, P]{d}
}

// defined is the one type-erasing adapter behind every Remedy.
type defined[C any, S any, P interface {
	*C
	RemedyConfig
}] struct{ def Def[C, S] }

func (r defined[C, S, P]) Name() string                { return r.def.Name }
func (r defined[C, S, P]) Settings() []Setting         { return r.def.Settings }
func (r defined[C, S, P]) DefaultConfig() RemedyConfig { return P(r.def.Defaults()) }

// cloneConfig copies a configuration (a shallow copy: configurations are plain
// values), so an instance's override does not change the global section.
func (r defined[C, S, P]) cloneConfig(c RemedyConfig) RemedyConfig {
	p, ok := c.(P)
	if !ok || p == nil {
		return c
	}
	d := *p
	return P(&d)
}

// decide runs the remedy when in.Remedies configures it. DefaultRemedies and
// Clone put each remedy's own type under its name; an entry of another type (a
// hand-made map) counts as absent, as a missing one does: the remedy does not run.
// The state is only ever written here, under the remedy's name (Registry's names
// are unique, a test checks), so it is always an S, or nil at first.
func (r defined[C, S, P]) decide(in Input, raw any, sh *Shared) ([]Decision, []Finding, any, bool) {
	cfg, ok := in.Remedies[r.def.Name].(P)
	if !ok || cfg == nil {
		return nil, nil, raw, false
	}
	st, _ := raw.(S)
	ds, fs, next := r.def.Decide(in, cfg, st, sh)
	return ds, fs, next, true
}

func (r defined[C, S, P]) observe(raw any, o Outcome) (any, bool) {
	if r.def.Observe == nil {
		return raw, false
	}
	st, _ := raw.(S)
	return r.def.Observe(st, o), true
}

// Params is how a remedy reads its configuration keys. internal/config implements
// it over a YAML mapping: each call reads one key if present, validates it and
// reports a bad value with its full path; a key no call asked for is an unknown key.
type Params interface {
	Bool(key string, dst *bool)
	// Int reads an integer of at least minValue.
	Int(key string, dst *int, minValue int)
	// Positive reads a number greater than 0.
	Positive(key string, dst *float64)
	// Duration reads a Go duration of at least minValue.
	Duration(key string, dst *time.Duration, minValue time.Duration)
	// Size reads a byte size (1048576, 512kb, 10mb, 1gb).
	Size(key string, dst *int64)
	// Problem reports a value that is wrong together with another (low above high).
	Problem(key, format string, args ...any)
}

// Limits are the rate limits every remedy has, so a remedy that misfires cannot
// hammer a Redis. Every configuration embeds it: its RateLimits and its Configure
// (for a remedy with no keys of its own) come with it.
type Limits struct {
	Enabled    bool
	Cooldown   time.Duration
	MaxPerHour int
}

// RateLimits returns the limits (promoted to every configuration embedding them).
func (l Limits) RateLimits() Limits { return l }

// Configure reads the keys every remedy has: enabled, cooldown, max_per_hour.
func (l *Limits) Configure(p Params) {
	p.Bool("enabled", &l.Enabled)
	p.Duration("cooldown", &l.Cooldown, 0)
	n := l.MaxPerHour
	p.Int("max_per_hour", &n, 1)
	l.MaxPerHour = n
}

// Setting is a CONFIG setting a remedy may hold, with how its values compare:
// CONFIG GET may answer in another form than the one set (sizes in bytes, class
// aliases, case), and taking that for an operator's change would be wrong.
type Setting struct {
	Name string
	// Normalize maps a value to a canonical form; nil means trimmed and lower-cased.
	Normalize func(string) string
	// Valid checks a value the remedy may set, or give back as the original: the
	// ledger that carries both is input from a directory another uid can write, and
	// restore writes what it says. Every setting has one (a test checks).
	Valid func(string) error
}

// Registry is every remedy, in evaluation order. Adding a remedy: its file, its
// test, and one line here (see README, "Adding a remedy").
var Registry = []Remedy{
	Define(replicaGuard),
	Define(stopWrites),
	Define(clientGuard),
	Define(oomRelief),
	Define(bgsaveRetry),
	Define(tempCleanup),
	Define(rewriteDeferral),
	Define(rewriteRetry),
	Define(replicaBuffer),
	Define(fsyncRelief),
	Define(oomShield),
	Define(forkBudget),
	Define(defrag),
}

// Remedies holds the configuration of every remedy, by name.
type Remedies map[string]RemedyConfig

// DefaultRemedies returns every remedy's documented defaults.
func DefaultRemedies() Remedies {
	rs := make(Remedies, len(Registry))
	for _, r := range Registry {
		rs[r.Name()] = r.DefaultConfig()
	}
	return rs
}

// Clone copies every remedy's configuration, so an instance's override does not
// change the global section it started from. A name no remedy has is dropped.
func (rs Remedies) Clone() Remedies {
	out := make(Remedies, len(rs))
	for _, r := range Registry {
		if c, ok := rs[r.Name()]; ok {
			out[r.Name()] = r.cloneConfig(c)
		}
	}
	return out
}

// Enabled lists the enabled remedies in registry order (metric label sets).
func (rs Remedies) Enabled() []string {
	var out []string
	for _, r := range Registry {
		if c, ok := rs[r.Name()]; ok && c.RateLimits().Enabled {
			out = append(out, r.Name())
		}
	}
	return out
}

// ConfigOf returns the configuration of type T in rs (for example
// ConfigOf[*StopWritesConfig]), or the zero T when rs has none.
func ConfigOf[T RemedyConfig](rs Remedies) T {
	for _, c := range rs {
		if t, ok := c.(T); ok {
			return t
		}
	}
	var zero T
	return zero
}

// RemedyNames lists every remedy's name in registry order.
func RemedyNames() []string {
	out := make([]string, len(Registry))
	for i, r := range Registry {
		out[i] = r.Name()
	}
	return out
}

// HeldSettings lists every setting some remedy may hold, sorted.
func HeldSettings() []string {
	var out []string
	for _, r := range Registry {
		for _, s := range r.Settings() {
			if !slices.Contains(out, s.Name) {
				out = append(out, s.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// ConfigParams is the CONFIG GET list: what diagnosis reads plus every setting a
// remedy may hold, so a held setting is always reconciled against the live value.
func ConfigParams() []string {
	out := slices.Clone(monitor.ConfigParams)
	for _, s := range HeldSettings() {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// SameValue reports whether two values of a setting mean the same to Redis, with
// the normaliser of the remedy that declared the setting.
func SameValue(setting, a, b string) bool {
	norm := defaultNormalize
	for _, r := range Registry {
		for _, s := range r.Settings() {
			if s.Name == setting && s.Normalize != nil {
				norm = s.Normalize
			}
		}
	}
	return norm(a) == norm(b)
}

// Holds reports whether remedy declares setting as one it may hold.
func Holds(remedy, setting string) bool {
	for _, r := range Registry {
		if r.Name() != remedy {
			continue
		}
		for _, s := range r.Settings() {
			if s.Name == setting {
				return true
			}
		}
	}
	return false
}

// CheckHeld says whether a ledger entry names a change some remedy makes: the
// remedy declares the setting, and both the value set and the original to give
// back are values of that setting the remedy may write. Anything else (a forged
// entry naming requirepass, appendonly or save) is refused, never undone.
func CheckHeld(remedy, setting, original, value string) error {
	var decl *Setting
	known := false
	for _, r := range Registry {
		if r.Name() != remedy {
			continue
		}
		known = true
		for _, s := range r.Settings() {
			if s.Name == setting {
				decl = &s
			}
		}
	}
	switch {
	case !known:
		return fmt.Errorf("no remedy is named %s", Quote(remedy))
	case decl == nil:
		return fmt.Errorf("remedy %s never holds %s", remedy, Quote(setting))
	case decl.Valid == nil:
		return fmt.Errorf("remedy %s declares no valid values for %s", remedy, setting)
	}
	if err := decl.Valid(value); err != nil {
		return fmt.Errorf("value %s: %w", Quote(value), err)
	}
	if err := decl.Valid(original); err != nil {
		return fmt.Errorf("original %s: %w", Quote(original), err)
	}
	return nil
}

// Quote quotes text from outside (a ledger, a reply) for a message, cut to 64
// bytes: a forged entry must not fill a log line or hide control characters.
func Quote(v string) string {
	const maxLen = 64
	if len(v) > maxLen {
		return fmt.Sprintf("%q… (%d bytes)", v[:maxLen], len(v))
	}
	return fmt.Sprintf("%q", v)
}
