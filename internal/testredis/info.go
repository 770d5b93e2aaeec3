package testredis

import "strings"

// parseInfo turns INFO output ("# Section" headers, "field:value" lines) into a map.
// Values keep everything after the first ':' (some contain more colons).
func parseInfo(raw string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		m[k] = v
	}
	return m
}

// infoSection returns the lines of one "# name" section of raw INFO output.
func infoSection(raw, name string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(raw, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "#") {
			in = strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(line, "#")), name)
			continue
		}
		if in && line != "" {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	if b.Len() == 0 {
		return "(no " + name + " section)"
	}
	return b.String()
}
