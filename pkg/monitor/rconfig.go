package monitor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ConfigParams are the settings CONFIG GET fetches: the ones persistence and memory
// diagnosis depends on. Parameters a server does not know (older versions) are simply
// absent from the reply.
var ConfigParams = []string{
	"dir", "dbfilename", "save", "stop-writes-on-bgsave-error",
	"appendonly", "appendfilename", "appenddirname", "appendfsync",
	"auto-aof-rewrite-percentage", "auto-aof-rewrite-min-size",
	"maxmemory", "maxmemory-policy", "logfile", "syslog-enabled",
	"replica-ignore-disk-write-errors", "disable-thp", "rdb-key-save-delay",
	// activedefrag: on means the build can defrag (a build without the defrag
	// hint refuses it); client-output-buffer-limit: a runaway client's limit.
	"activedefrag", "client-output-buffer-limit",
	// oom-score-adj-values: whether the OOM bias oom_shield holds favours the child.
	"oom-score-adj-values",
}

// RedisConfig is the result of CONFIG GET: parameter name to value, as Redis prints it.
type RedisConfig map[string]string

// ParseConfigReply turns the flat name/value list CONFIG GET returns (RESP2) into a
// RedisConfig. A trailing unpaired element is ignored.
func ParseConfigReply(kv []string) RedisConfig {
	c := make(RedisConfig, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		c[strings.ToLower(kv[i])] = kv[i+1]
	}
	return c
}

// CheckConfigReply turns the reply of CONFIG GET asked (exact names, no
// patterns) into a RedisConfig, and refuses a reply that does not answer the
// question: an unpaired element, a name that was not asked for, or a name twice.
// A value is trusted only under the name it was asked by; a parameter the server
// does not know is simply absent. The error matches ErrInvalidReply.
func CheckConfigReply(asked []string, kv []string) (RedisConfig, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("%w: CONFIG GET answered %d elements, not name/value pairs", ErrInvalidReply, len(kv))
	}
	c := make(RedisConfig, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		name := strings.ToLower(kv[i])
		if !slices.ContainsFunc(asked, func(a string) bool { return strings.EqualFold(a, name) }) {
			return nil, fmt.Errorf("%w: CONFIG GET answered %.64q, which was not asked for", ErrInvalidReply, kv[i])
		}
		if _, dup := c[name]; dup {
			return nil, fmt.Errorf("%w: CONFIG GET answered %.64q twice", ErrInvalidReply, kv[i])
		}
		c[name] = kv[i+1]
	}
	return c, nil
}

// Get returns a parameter and whether the server reported it.
func (c RedisConfig) Get(name string) (string, bool) {
	v, ok := c[name]
	return v, ok
}

// Known reports whether CONFIG GET has succeeded at least once.
func (c RedisConfig) Known() bool { return len(c) > 0 }

// SavePointsSet reports whether RDB save points are configured, which together with
// stop-writes-on-bgsave-error decides whether a failed save rejects writes.
func (c RedisConfig) SavePointsSet() bool {
	return strings.TrimSpace(c["save"]) != ""
}

// StopWritesOnBgsaveError reports the setting; unknown reads as Redis's default (yes).
func (c RedisConfig) StopWritesOnBgsaveError() bool {
	v, ok := c["stop-writes-on-bgsave-error"]
	return !ok || v == "yes"
}

// AppendOnly reports whether AOF is configured on.
func (c RedisConfig) AppendOnly() bool { return c["appendonly"] == "yes" }

// Int returns a numeric parameter, or def when it is absent or not a number.
func (c RedisConfig) Int(name string, def int64) int64 {
	v, ok := c[name]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return def
	}
	return n
}

// SavePoint is one "seconds changes" pair of the save setting: Redis saves when at
// least Changes keys changed and more than Seconds passed since the last save.
type SavePoint struct {
	Seconds, Changes int64
}

// SavePoints parses the save setting ("3600 1 300 100 60 10000"); pairs that do
// not parse are left out.
func (c RedisConfig) SavePoints() []SavePoint {
	f := strings.Fields(c["save"])
	var out []SavePoint
	for i := 0; i+1 < len(f); i += 2 {
		secs, err1 := strconv.ParseInt(f[i], 10, 64)
		changes, err2 := strconv.ParseInt(f[i+1], 10, 64)
		if err1 == nil && err2 == nil && secs >= 0 && changes >= 0 {
			out = append(out, SavePoint{Seconds: secs, Changes: changes})
		}
	}
	return out
}
