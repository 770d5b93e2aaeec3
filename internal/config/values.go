package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The value readers leave *dst alone unless the value is set and valid, so a
// default stands when a key is absent or wrong.

// duration reads a Go duration of at least min.
func (v *validator) duration(path string, s *string, dst *time.Duration, min time.Duration) {
	if s == nil {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(*s))
	if err != nil {
		v.addf(path, "%q is not a duration (examples: 500ms, 1s, 5m)", *s)
		return
	}
	if d < min {
		v.addf(path, "%s is below the minimum %s", d, min)
		return
	}
	*dst = d
}

// size reads a byte size (ParseSize).
func (v *validator) size(path string, s *string, dst *int64) {
	if s == nil {
		return
	}
	n, err := ParseSize(*s)
	if err != nil {
		v.addf(path, "%v", err)
		return
	}
	*dst = n
}

// positive reads a finite number above 0: a ratio or a factor.
func (v *validator) positive(path string, f *float64, dst *float64) {
	if f == nil {
		return
	}
	if !finite(path, f, v) {
		return
	}
	if *f <= 0 {
		v.addf(path, "%v must be greater than 0", *f)
		return
	}
	*dst = *f
}

// percent reads a finite percentage in (0, 100].
func (v *validator) percent(path string, f *float64, dst *float64) {
	if f == nil {
		return
	}
	if !finite(path, f, v) {
		return
	}
	if *f <= 0 || *f > 100 {
		v.addf(path, "%v must be a percentage in (0, 100]", *f)
		return
	}
	*dst = *f
}

// finite reports whether *f is a finite number, and reports the problem if not:
// YAML accepts .nan and .inf, and a NaN threshold compares false with every value,
// so the finding it guards could never fire.
func finite(path string, f *float64, v *validator) bool {
	if math.IsNaN(*f) || math.IsInf(*f, 0) {
		v.addf(path, "%v is not a finite number", *f)
		return false
	}
	return true
}

// ParseSize reads a byte size: a plain number of bytes or a number with a unit
// (k, kb, kib, m, mb, mib, g, gb, gib; case-insensitive; powers of 1024 as Redis does).
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<63-1)/mult { // reject sizes that overflow int64
		return 0, fmt.Errorf("%q is not a size (examples: 1048576, 512kb, 10mb, 1gb)", s)
	}
	return n * mult, nil
}
