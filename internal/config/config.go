// Package config loads redis-guardian's YAML configuration: strict (an unknown key is
// an error naming its path), with every default in one place, and validation errors
// that name the item at fault, so an operator fixes a typo before it hides a problem.
package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"go.yaml.in/yaml/v3"
)

// DefaultPath is where the packaged service reads its configuration.
const DefaultPath = "/etc/redis-guardian/config.yaml"

// DefaultMetricsListen keeps metrics on loopback: they name instances and settings,
// which are nobody else's business unless the operator opens them up.
const DefaultMetricsListen = "127.0.0.1:9637"

// MinInterval is the shortest poll interval: below it a tick costs Redis more than
// it can observe.
const MinInterval = 10 * time.Millisecond

// Defaults of info_refresh and fast_poll.
const (
	DefaultInfoRefresh = 10 * time.Second
	DefaultFastPoll    = 50 * time.Millisecond
)

// DefaultAddr is watched when there is neither a config file nor --addr.
const DefaultAddr = "127.0.0.1:6379"

// Mode says whether remedies are carried out.
type Mode string

// Modes.
const (
	ModeEnforce Mode = "enforce"
	ModeDryRun  Mode = "dry-run"
)

// Config is the validated configuration.
type Config struct {
	Interval      time.Duration
	Timeouts      Timeouts
	ConfigRefresh time.Duration
	// InfoRefresh is how often a tick asks for every INFO section; the ticks
	// between ask for persistence (and replication on a replica or a master with
	// replicas) only. 0: every section at every tick.
	InfoRefresh time.Duration
	// FastPoll is the tick interval while a fork child runs and around a save
	// Redis is about to start by itself; 0 turns it off.
	FastPoll time.Duration
	Mode     Mode
	StateDir string
	// RuntimeDir holds the host's fork slots (fork_budget), shared by every
	// guardian process of the host (the @ units).
	RuntimeDir string
	// MetricsListen is the host:port of the Prometheus endpoint, "" for none.
	MetricsListen string
	Instances     []Instance
	// Preflight configures `redis-guardian preflight`.
	Preflight Preflight
	// Warnings are problems that do not stop the guardian but deserve a fix, such as
	// a password written inline.
	Warnings []string
}

// Preflight says what `redis-guardian preflight` may do about an AOF that would
// keep Redis from starting.
type Preflight struct {
	// FixTruncatedTail lets it cut a torn tail off the last AOF file (after a copy
	// aside) when that loses at most MaxTruncateBytes.
	FixTruncatedTail bool
	MaxTruncateBytes int64
}

// Timeouts bound every call, so one slow Redis never stalls a tick.
type Timeouts struct {
	Connect time.Duration
	Command time.Duration
}

// Instance is one watched Redis.
type Instance struct {
	Name          string
	Addr          string
	Username      string
	Password      string
	PasswordFile  string
	TLS           *TLS
	ConfigCommand string
	// HostChecks is auto (when Redis is local), on or off.
	HostChecks monitor.HostChecks
	// LogFile overrides the Redis log path taken from CONFIG GET logfile.
	LogFile string
	// IgnoreFindings are finding ids the operator has accepted for this instance
	// (global and per-instance lists combined).
	IgnoreFindings []string
	Thresholds     policy.Thresholds
	Remedies       policy.Remedies
}

// TLS holds the client TLS files for rediss:// and TLS-enabled Redis.
type TLS struct {
	CA                 string
	Cert               string
	Key                string
	ServerName         string
	InsecureSkipVerify bool
}

// ClientConfig builds the *tls.Config, reading the files.
func (t *TLS) ClientConfig() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("read tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificates found", t.CA)
		}
		c.RootCAs = pool
	}
	if t.Cert != "" || t.Key != "" {
		kp, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("load tls cert/key: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// Default returns the configuration used with no file: one Redis on 127.0.0.1:6379.
func Default() *Config {
	c, err := Parse(strings.NewReader(""))
	if err != nil {
		// The empty document is valid by construction; a failure is a bug in the
		// defaults, which a test catches.
		return &Config{}
	}
	return c
}

// ValidationError lists every problem found, each naming its item.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Options say how a file is judged.
type Options struct {
	// OtherHost judges a file meant for another host: the files it names
	// (password_file, tls ca, cert and key) are not looked at here, so only the
	// document is checked: syntax, types, ranges and the rules between fields.
	OtherHost bool
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	return LoadWith(path, Options{})
}

// LoadWith is Load, judging the file as o says.
func LoadWith(path string, o Options) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	c, err := ParseWith(f, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse reads and validates a YAML document. An empty document yields the defaults.
func Parse(r io.Reader) (*Config, error) {
	return ParseWith(r, Options{})
}

// ParseWith is Parse, judging the document as o says. The document pass and the
// pass over this host's files both run, whatever the other finds, so the error
// lists every problem at once, each instance's together.
func ParseWith(r io.Reader, o Options) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	raw, keyProblems, err := decode(data)
	if err != nil {
		return nil, err
	}
	c, v := raw.validate()
	if !o.OtherHost {
		v = merge(v, hostFiles(c))
	}
	if len(keyProblems) > 0 || len(v.problems) > 0 {
		return nil, &ValidationError{Problems: oneLine(append(keyProblems, v.problems...))}
	}
	c.Warnings = oneLine(v.warnings)
	return c, nil
}

// decode reads a document into the raw types. Unknown keys come back as problems,
// not as an error: Decode is not strict, so they are skipped and every other
// problem is still found. Bad YAML or a value of the wrong type ends it there.
func decode(data []byte) (*rawConfig, []string, error) {
	var raw rawConfig
	if len(bytes.TrimSpace(data)) == 0 {
		return &raw, nil, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, &ValidationError{Problems: oneLine([]string{"yaml: " + strings.TrimPrefix(err.Error(), "yaml: ")})}
	}
	v := &validator{}
	if len(root.Content) > 0 {
		v.checkKeys(root.Content[0], typeOf(raw), "")
	}
	if err := root.Decode(&raw); err != nil {
		return nil, nil, &ValidationError{Problems: oneLine(append(v.problems, typeErrors(err)...))}
	}
	return &raw, v.problems, nil
}

// typeErrors splits yaml's combined "unmarshal errors" into one problem each.
func typeErrors(err error) []string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return te.Errors
	}
	return []string{err.Error()}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Overrides are the command-line flags that take precedence over the file.
type Overrides struct {
	Addr     string
	Interval time.Duration
	DryRun   bool
	StateDir string
	// MetricsListen, when non-nil, replaces metrics_listen ("" disables).
	MetricsListen *string
}

// Apply applies flag overrides. --addr replaces the address of the single configured
// instance; with several instances it is ambiguous and refused rather than guessed.
func (c *Config) Apply(o Overrides) error {
	if o.Addr != "" {
		if err := checkAddr(o.Addr); err != nil {
			return fmt.Errorf("--addr: %w", err)
		}
		if len(c.Instances) > 1 {
			return fmt.Errorf("--addr: the config file lists %d instances; edit the file or drop --addr", len(c.Instances))
		}
	}
	if o.Interval != 0 && o.Interval < MinInterval {
		return fmt.Errorf("--interval: %s is below the minimum %s", o.Interval, MinInterval)
	}
	if o.StateDir != "" {
		if err := checkStateDir(o.StateDir); err != nil {
			return fmt.Errorf("--state-dir: %w", err)
		}
	}
	if o.MetricsListen != nil {
		if err := checkListen(*o.MetricsListen); err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
	}
	// Everything is valid: only now change the config, so an error leaves it whole.
	if o.Addr != "" {
		in := &c.Instances[0]
		if in.Name == defaultName(in.Addr, 0) {
			in.Name = defaultName(o.Addr, 0)
		}
		in.Addr = o.Addr
		// The file's address is no longer used: its warnings give way to the flag's.
		c.Warnings = append(dropWarnings(c.Warnings, "instances[0].addr:"), addrWarnings("--addr", o.Addr, true)...)
	}
	if o.Interval != 0 {
		c.Interval = o.Interval
	}
	if o.DryRun {
		c.Mode = ModeDryRun
	}
	if o.StateDir != "" {
		c.StateDir = o.StateDir
	}
	if o.MetricsListen != nil {
		c.MetricsListen = *o.MetricsListen
		c.Warnings = dropWarnings(c.Warnings, "metrics_listen:")
		if w := metricsWildcardWarning("--metrics-listen", c.MetricsListen); w != "" {
			c.Warnings = append(c.Warnings, w)
		}
	}
	return nil
}

// dropWarnings returns ws without those about the setting prefix names.
func dropWarnings(ws []string, prefix string) []string {
	var out []string
	for _, w := range ws {
		if !strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}

// IgnoreSet returns IgnoreFindings as a set.
func (in Instance) IgnoreSet() map[string]bool {
	m := make(map[string]bool, len(in.IgnoreFindings))
	for _, id := range in.IgnoreFindings {
		m[id] = true
	}
	return m
}

// ForkSlots is how many fork slots the host's fork budget has as this
// configuration uses them (the largest max_concurrent of the instances with
// fork_budget on), 0 when no instance uses them.
func (c *Config) ForkSlots() int {
	n := 0
	for _, in := range c.Instances {
		if fb := policy.ConfigOf[*policy.ForkBudgetConfig](in.Remedies); fb != nil && fb.Enabled {
			n = max(n, fb.MaxConcurrent)
		}
	}
	return n
}
