package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Remedy is one remedy, declared in one file: its name, the settings it may hold
// and how a held value compares with what CONFIG GET answers, its configuration
// with defaults, and its decide step. Registry lists every remedy; everything the
// rest of the program needs to know about remedies (the CONFIG GET list, the
// ledger's reconciliation, metric label sets, configuration keys) is derived from
// it, so adding a remedy is one new file and one line there.
type Remedy interface {
	// Name is how the remedy appears in configuration, logs and metrics.
	Name() string
	// Settings are the CONFIG settings the remedy may change and hold.
	Settings() []Setting
	// DefaultConfig is the remedy's configuration with its documented defaults.
	DefaultConfig() RemedyConfig
	// Decide is the remedy's step over one snapshot. It owns its state: st is what
	// it returned last time (nil at first), and nobody else writes it. Shared is the
	// one mechanism for what several remedies need (rate limits, yields, backoff).
	// It returns decisions, findings about the remedy's own situation (a deferral
	// held too long), and its new state. It must be pure and must not modify st.
	Decide(in Input, cfg RemedyConfig, st any, sh *Shared) ([]Decision, []Finding, any)
}

// Observer is implemented by a remedy whose state depends on how its decisions
// went (the BGSAVE retry counts successful attempts for its backoff).
type Observer interface {
	Observe(st any, o Outcome) any
}

// RemedyConfig is one remedy's configuration. Implementations are pointers to
// plain structs, so a test or the config loader edits them in place; Clone gives a
// per-instance copy of the global settings.
type RemedyConfig interface {
	// Configure reads the remedy's keys from p, validating each, over the values
	// already set (defaults, then the global section, then the instance's).
	Configure(p Params)
	// Limits are the enabled flag and rate limits every remedy has.
	RateLimits() Limits
	Clone() RemedyConfig
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
// hammer a Redis.
type Limits struct {
	Enabled    bool
	Cooldown   time.Duration
	MaxPerHour int
}

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
	replicaGuard{},
	stopWrites{},
	bgsaveRetry{},
	tempCleanup{},
	rewriteDeferral{},
	rewriteRetry{},
	replicaBuffer{},
	fsyncRelief{},
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
// change the global section it started from.
func (rs Remedies) Clone() Remedies {
	out := make(Remedies, len(rs))
	for k, v := range rs {
		out[k] = v.Clone()
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

// validYesNo accepts a boolean setting's values.
func validYesNo(v string) error {
	switch defaultNormalize(v) {
	case "yes", "no":
		return nil
	}
	return errors.New("not yes or no")
}

// validPercent accepts a non-negative integer (auto-aof-rewrite-percentage).
func validPercent(v string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return errors.New("not a non-negative integer")
	}
	return nil
}

func defaultNormalize(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// normalizeInt reads an integer setting canonically ("0", " 0", "+0" are one value);
// a value that is not a number is compared as text.
func normalizeInt(v string) string {
	var n int64
	if _, err := fmt.Sscan(strings.TrimSpace(v), &n); err == nil {
		return fmt.Sprint(n)
	}
	return defaultNormalize(v)
}
