// Package journal writes redis-guardian's logs as native systemd journal entries:
// every zap field becomes a journal field, so `journalctl FINDING=misconf_rdb` and
// `journalctl MESSAGE_ID=...` select entries without grepping text. No maintained
// zap-to-journald library exists, so this is a small zapcore.Core of our own on
// go-systemd's journal.Send.
package journal

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap/zapcore"

	"github.com/redis-guardian/redis-guardian/pkg/events"
)

// Identifier is the SYSLOG_IDENTIFIER of every entry.
const Identifier = "redis-guardian"

// SendFunc delivers one entry. journal.Send is the real one; tests pass a recorder.
type SendFunc func(message string, priority journal.Priority, vars map[string]string) error

// Core is a zapcore.Core that sends each entry to the journal.
type Core struct {
	zapcore.LevelEnabler
	send   SendFunc
	fields []zapcore.Field
}

var _ zapcore.Core = (*Core)(nil)

// NewCore returns a core that sends entries at or above enab with send; a nil send
// means journal.Send on the system journal socket.
func NewCore(enab zapcore.LevelEnabler, send SendFunc) *Core {
	if send == nil {
		send = journal.Send
	}
	return &Core{LevelEnabler: enab, send: send}
}

// With returns a core that adds fields to every entry.
func (c *Core) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.fields = append(append([]zapcore.Field(nil), c.fields...), fields...)
	return &clone
}

// Check adds the core when the level is enabled.
func (c *Core) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

// Write converts the entry and sends it. A failed send is returned to zap, which
// reports it on its error output (stderr): logging must never stop the guardian.
func (c *Core) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	msg, vars := Convert(ent, append(append([]zapcore.Field(nil), c.fields...), fields...))
	if err := c.send(msg, Priority(ent.Level), vars); err != nil {
		return fmt.Errorf("journal send: %w", err)
	}
	return nil
}

// Sync is a no-op: every entry is one datagram, sent synchronously.
func (c *Core) Sync() error { return nil }

// Priority maps a zap level to a syslog priority (debug 7, info 6, warn 4, error 3,
// anything worse 2).
func Priority(l zapcore.Level) journal.Priority {
	switch {
	case l <= zapcore.DebugLevel:
		return journal.PriDebug
	case l == zapcore.InfoLevel:
		return journal.PriInfo
	case l == zapcore.WarnLevel:
		return journal.PriWarning
	case l == zapcore.ErrorLevel:
		return journal.PriErr
	default:
		return journal.PriCrit
	}
}

// fieldNames renames the logger's generic keys to the journal's documented ones,
// which name what they are outside the guardian's own context.
var fieldNames = map[string]string{
	"instance": "REDIS_INSTANCE",
	"addr":     "REDIS_ADDR",
	"error":    "ERROR",
}

// Convert builds the MESSAGE text and the journal fields of one entry. The message
// stays readable on its own (the error is appended); the fields carry everything for
// selection. An event field (events.FieldKey) with a known name adds its MESSAGE_ID.
func Convert(ent zapcore.Entry, fields []zapcore.Field) (string, map[string]string) {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	vars := make(map[string]string, len(enc.Fields)+6)
	vars["SYSLOG_IDENTIFIER"] = Identifier
	if ent.LoggerName != "" {
		vars["LOGGER"] = ent.LoggerName
	}
	if ent.Caller.Defined {
		vars["CODE_FILE"] = ent.Caller.File
		vars["CODE_LINE"] = strconv.Itoa(ent.Caller.Line)
		if ent.Caller.Function != "" {
			vars["CODE_FUNC"] = ent.Caller.Function
		}
	}
	// Sorted, so that when two keys sanitise to the same name the result is stable.
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, ok := fieldNames[k]
		if !ok {
			name = FieldName(k)
		}
		if name == "" || reserved(name) {
			continue
		}
		vars[name] = value(enc.Fields[k])
	}
	if ev, ok := enc.Fields[events.FieldKey].(string); ok {
		if id, known := MessageIDs[ev]; known {
			vars["MESSAGE_ID"] = id
		}
	}
	msg := ent.Message
	if e, ok := vars["ERROR"]; ok && e != "" {
		msg += ": " + e
	}
	return msg, vars
}

// reserved names are set by the core or by journald itself and must not be
// overwritten by a field that happens to sanitise to them.
func reserved(name string) bool {
	switch name {
	case "MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC":
		return true
	}
	return strings.HasPrefix(name, "_")
}

// FieldName sanitises a log key into a journal field name: upper case, only A-Z,
// 0-9 and _, starting with a letter, at most 64 characters. It returns "" when
// nothing usable is left.
func FieldName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(key) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "_0123456789")
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// value renders a field value as journal text; durations in seconds, like the
// console and JSON logs.
func value(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Duration:
		return strconv.FormatFloat(x.Seconds(), 'f', -1, 64)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Sprint(x)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = value(e)
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(x)
	}
}
