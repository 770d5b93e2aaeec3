package monitor

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// ConfigFileReading is what Redis's own config file (INFO's config_file) says
// about the settings the guardian may hold. CONFIG REWRITE (an operator's, or
// Sentinel's at every failover) writes the runtime value of every setting into
// that file, a value the guardian holds only for an episode included; the next
// restart would then run with it for good.
type ConfigFileReading struct {
	Path string
	// Known is set when the file was read; Err says why it could not be.
	Known bool
	Err   error
	// Lines holds, per setting, the line that decides its value (the last one
	// that sets it, as Redis applies them in order). A setting the file does not
	// name is absent.
	Lines   map[string]ConfigFileLine
	ModTime time.Time
	Size    int64
}

// ConfigFileLine is one line of a Redis config file that sets a setting.
type ConfigFileLine struct {
	Number int // 1-based
	Value  string
	Text   string
}

// maxConfigFileBytes bounds what is read of a config file: redis.conf is about
// 100 KiB with all its comments; anything far larger is not a Redis config.
const maxConfigFileBytes = 4 << 20

// ReadConfigFile reads a Redis config file and returns the lines that set any of
// settings. `include` directives are not followed: CONFIG REWRITE writes only the
// main file.
func ReadConfigFile(path string, settings []string) ConfigFileReading {
	r := ConfigFileReading{Path: path}
	text, st, err := ReadConfigText(path)
	if err != nil {
		r.Err = err
		return r
	}
	r.Known, r.ModTime, r.Size = true, st.ModTime(), st.Size()
	r.Lines = ParseConfigFile(text, settings)
	return r
}

// ReadConfigText reads a Redis config file's whole text, bounded: the redis uid
// can write that file (CONFIG REWRITE needs to), so it is input. Redis read it at
// start, so it was a regular file then; the path may name something else now (a
// FIFO, a symlink to a device), which must not block or flood the reader.
func ReadConfigText(path string) (string, os.FileInfo, error) {
	f, st, err := openRegular(path)
	if err != nil {
		return "", nil, fmt.Errorf("read redis config file: %w", err)
	}
	defer f.Close()
	if st.Size() > maxConfigFileBytes {
		return "", nil, fmt.Errorf("read redis config file %s: %d bytes is too large for a Redis config file", path, st.Size())
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && n != len(b) {
		return "", nil, fmt.Errorf("read redis config file: %w", err)
	}
	return string(b[:n]), st, nil
}

// ParseConfigFile returns the lines of a Redis config file's text that set any of
// settings, the last one per setting. Directives are case-insensitive; an
// argument may be quoted.
func ParseConfigFile(text string, settings []string) map[string]ConfigFileLine {
	out := map[string]ConfigFileLine{}
	for i, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(t, " ")
		if j := strings.IndexAny(name, "\t"); j >= 0 {
			name, rest = name[:j], name[j+1:]+" "+rest
		}
		name = strings.ToLower(name)
		if !slices.Contains(settings, name) {
			continue
		}
		out[name] = ConfigFileLine{Number: i + 1, Value: unquote(strings.TrimSpace(rest)), Text: t}
	}
	return out
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}
