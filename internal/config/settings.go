package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// defaults is the configuration before the document is read: every default of a
// global setting, in one place.
func defaults() *Config {
	return &Config{
		Interval:      time.Second,
		Timeouts:      Timeouts{Connect: 2 * time.Second, Command: time.Second},
		ConfigRefresh: time.Minute,
		InfoRefresh:   DefaultInfoRefresh,
		FastPoll:      DefaultFastPoll,
		Mode:          ModeEnforce,
		StateDir:      "/var/lib/redis-guardian",
		RuntimeDir:    DefaultRuntimeDir,
		MetricsListen: DefaultMetricsListen,
		Preflight:     Preflight{MaxTruncateBytes: 1 << 20},
	}
}

// timing reads the poll intervals and the timeouts.
func (v *validator) timing(r *rawConfig, c *Config) {
	v.duration("interval", r.Interval, &c.Interval, MinInterval)
	v.duration("config_refresh", r.ConfigRefresh, &c.ConfigRefresh, time.Second)
	v.duration("info_refresh", r.InfoRefresh, &c.InfoRefresh, 0)
	v.duration("fast_poll", r.FastPoll, &c.FastPoll, 0)
	if c.FastPoll > 0 && c.FastPoll < MinInterval {
		v.addf("fast_poll", "%s is below the minimum %s (0 turns close polling off)", c.FastPoll, MinInterval)
	}
	if r.Timeouts != nil {
		v.duration("timeouts.connect", r.Timeouts.Connect, &c.Timeouts.Connect, time.Millisecond)
		v.duration("timeouts.command", r.Timeouts.Command, &c.Timeouts.Command, time.Millisecond)
	}
}

func (v *validator) mode(s *string, dst *Mode) {
	if s == nil {
		return
	}
	switch Mode(*s) {
	case ModeEnforce, ModeDryRun:
		*dst = Mode(*s)
	default:
		v.addf("mode", "%q is not one of enforce, dry-run", *s)
	}
}

// stateDir checks the path only: the directory is made and checked by the
// guardian that uses it, on its own host.
func (v *validator) stateDir(s *string, dst *string) {
	if s == nil {
		return
	}
	if err := checkStateDir(*s); err != nil {
		v.addf("state_dir", "%v", err)
		return
	}
	*dst = *s
}

// DefaultRuntimeDir is where the fork slots live: systemd's RuntimeDirectory= of
// the units, kept across their restarts (RuntimeDirectoryPreserve=yes) so every
// unit of the host shares it.
const DefaultRuntimeDir = "/run/redis-guardian"

// runtimeDir checks the path only, like stateDir.
func (v *validator) runtimeDir(s *string, dst *string) {
	if s == nil {
		return
	}
	if err := checkStateDir(*s); err != nil {
		v.addf("runtime_dir", "%v", err)
		return
	}
	*dst = *s
}

// checkStateDir insists on an absolute path: a relative one would move with the
// working directory, and the ledger with it.
func checkStateDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%q must be an absolute path", dir)
	}
	return nil
}

func (v *validator) metricsListen(s *string, dst *string) {
	if s == nil {
		return
	}
	if err := checkListen(*s); err != nil {
		v.addf("metrics_listen", "%v", err)
		return
	}
	*dst = *s
	if w := metricsWildcardWarning("metrics_listen", *s); w != "" {
		v.warn(w)
	}
}

// preflight reads what `redis-guardian preflight` may do to a torn AOF.
func (v *validator) preflight(p *rawPreflight, dst *Preflight) {
	if p == nil {
		return
	}
	if p.FixTruncatedTail != nil {
		dst.FixTruncatedTail = *p.FixTruncatedTail
	}
	if p.MaxTruncateBytes == nil {
		return
	}
	n, err := ParseSize(*p.MaxTruncateBytes)
	switch {
	case err != nil:
		v.addf("preflight.max_truncate_bytes", "%v", err)
	case n <= 0:
		v.addf("preflight.max_truncate_bytes", "%q: want a size above 0", *p.MaxTruncateBytes)
	default:
		dst.MaxTruncateBytes = n
	}
}
