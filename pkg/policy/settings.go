package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Settings more than one remedy holds, declared once here: SameValue and
// CheckHeld take a setting's Normalize and Valid from whichever remedy declares
// it, so two remedies holding one setting must share one declaration. A setting
// only one remedy holds is declared in that remedy's file.
const (
	// SettingStopWrites is held by stop_writes (a failed or predicted save) and
	// replica_guard (a replica that would crash on a failed save).
	SettingStopWrites = "stop-writes-on-bgsave-error"
	// SettingRewritePercent is held by rewrite_deferral (load) and rewrite_retry
	// (a rewrite storm, or a rewrite that cannot fit).
	SettingRewritePercent = "auto-aof-rewrite-percentage"
)

var (
	stopWritesSetting     = Setting{Name: SettingStopWrites, Valid: validYesNo}
	rewritePercentSetting = Setting{Name: SettingRewritePercent, Normalize: normalizeInt, Valid: validPercent}
)

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
