// Package preflight checks the append-only files a Redis (or Valkey) is about to
// load, before it starts: a torn tail (a crash in the middle of a write) makes
// Redis before 8.4 refuse to start, and systemd restarts it into the same refusal,
// thousands of times. It reports the file, the offset and what a fix would lose,
// and with fix_truncated_tail cuts a torn tail off the last file (after a copy
// aside) when that loses little. A corruption in the middle of a file is never
// "fixed": the data after it is real.
package preflight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Options say what to check and what may be done.
type Options struct {
	// RedisConf is the server's config file: dir, appendonly, appenddirname and
	// appendfilename come from it (the server is not running yet).
	RedisConf string
	// CheckAOF is redis-check-aof or valkey-check-aof; "" finds one on PATH.
	CheckAOF string
	// Fix allows cutting a torn tail of at most MaxTruncate bytes.
	Fix         bool
	MaxTruncate int64
	// Now stamps the copy kept aside.
	Now func() time.Time
}

// Result is what the check found and did.
type Result struct {
	// Checked is the file given to the checker ("" when AOF is off or absent).
	Checked string
	// Bad is the first file the checker refused ("" when all are valid), with the
	// offset up to which it is valid and the bytes after it.
	Bad        string
	ValidUpTo  int64
	Loss       int64
	TornTail   bool
	Fixed      bool
	Backup     string
	Why        string // why a bad file was not fixed
	CheckerOut string
}

// Run checks the AOF of the server configured by o.RedisConf.
func Run(ctx context.Context, o Options) (Result, error) {
	var r Result
	conf, err := os.ReadFile(o.RedisConf)
	if err != nil {
		return r, fmt.Errorf("read the server's config: %w", err)
	}
	lines := monitor.ParseConfigFile(string(conf), []string{"dir", "appendonly", "appenddirname", "appendfilename"})
	get := func(k, def string) string {
		if l, ok := lines[k]; ok && l.Value != "" {
			return l.Value
		}
		return def
	}
	if get("appendonly", "no") != "yes" {
		return r, nil // no AOF to load
	}
	dir := get("dir", "")
	if dir == "" || !filepath.IsAbs(dir) {
		return r, fmt.Errorf("%s: dir %q is not an absolute path; the server resolves it against its own working directory, which preflight cannot know", o.RedisConf, dir)
	}
	name := get("appendfilename", "appendonly.aof")
	target := filepath.Join(dir, get("appenddirname", "appendonlydir"), name+".manifest") // 7.0+
	if _, err := os.Stat(target); err != nil {
		target = filepath.Join(dir, name) // before 7.0: one file
		if _, err := os.Stat(target); err != nil {
			return r, nil // nothing written yet
		}
	}
	r.Checked = target
	checker, err := findChecker(o.CheckAOF, o.RedisConf)
	if err != nil {
		return r, err
	}
	out, valid, err := check(ctx, checker, target)
	r.CheckerOut = out
	if err != nil {
		return r, err
	}
	if valid {
		return r, nil
	}
	a, ok := lastAnalysis(out)
	if !ok {
		hint := ""
		if strings.Contains(out, "RDB preamble") {
			// Measured: redis-check-aof 7.0 on a Valkey 8 base (RDB 11).
			hint = " (a checker older than the server cannot read the base file's RDB preamble: name the server's own with --check-aof)"
		}
		return r, fmt.Errorf("%s found %s not valid, and its output names no file and offset%s:\n%s", checker, target, hint, out)
	}
	r.Bad = a.file
	if !filepath.IsAbs(r.Bad) {
		r.Bad = filepath.Join(filepath.Dir(target), a.file)
	}
	r.ValidUpTo, r.Loss = a.okUpTo, a.diff
	last, err := lastFile(target, r.Bad)
	if err != nil {
		return r, err
	}
	r.TornTail = last && tornTail(r.Bad, a.okUpTo)
	switch {
	case !o.Fix:
		r.Why = "preflight.fix_truncated_tail is off"
	case !r.TornTail:
		r.Why = "the damage is not a torn tail of the last file: the data after it is real, so nothing is cut"
	case r.Loss > o.MaxTruncate:
		r.Why = fmt.Sprintf("cutting it would lose %d bytes, more than preflight.max_truncate_bytes %d", r.Loss, o.MaxTruncate)
	default:
		if err := r.fix(ctx, o, checker, target); err != nil {
			return r, err
		}
	}
	return r, nil
}

// fix keeps a copy of the bad file aside, cuts it at the last valid byte, and
// checks again.
func (r *Result) fix(ctx context.Context, o Options, checker, target string) error {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	r.Backup = fmt.Sprintf("%s.preflight-%s.bak", r.Bad, now().UTC().Format("20060102T150405Z"))
	if err := copyFile(r.Bad, r.Backup); err != nil {
		return fmt.Errorf("keep a copy of %s before cutting it: %w", r.Bad, err)
	}
	if err := os.Truncate(r.Bad, r.ValidUpTo); err != nil {
		return fmt.Errorf("cut %s at byte %d: %w", r.Bad, r.ValidUpTo, err)
	}
	out, valid, err := check(ctx, checker, target)
	if err != nil {
		return err
	}
	if !valid {
		return fmt.Errorf("%s is still not valid after cutting its torn tail (the original is kept as %s):\n%s", target, r.Backup, out)
	}
	r.Fixed = true
	return nil
}

// findChecker returns the given checker, else the one of the server's family on
// PATH: valkey-check-aof first when the config file's path names Valkey (a
// Valkey 8 base file is an RDB 11 preamble, which redis-check-aof 7.x cannot
// read), redis-check-aof first otherwise.
func findChecker(given, redisConf string) (string, error) {
	if given != "" {
		return given, nil
	}
	order := []string{"redis-check-aof", "valkey-check-aof"}
	if strings.Contains(strings.ToLower(redisConf), "valkey") {
		order[0], order[1] = order[1], order[0]
	}
	for _, c := range order {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("neither redis-check-aof nor valkey-check-aof is on PATH (redis-tools, valkey-tools); name one with --check-aof")
}

// check runs the checker without --fix: it only reads. Exit 1 means "not
// valid"; its output says where.
func check(ctx context.Context, checker, target string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, checker, target)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), true, nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return string(out), false, nil
	default:
		return string(out), false, fmt.Errorf("run %s %s: %w: %s", checker, target, err, bytes.TrimSpace(out))
	}
}

type analysis struct {
	file         string
	okUpTo, diff int64
}

var analyzedRE = regexp.MustCompile(`AOF analyzed: filename=([^,]+), size=(\d+), ok_up_to=(\d+), ok_up_to_line=\d+, diff=(\d+)`)

// lastAnalysis is the checker's report on the file it stopped at (the last
// "AOF analyzed" line whose diff is not 0).
func lastAnalysis(out string) (analysis, bool) {
	var found analysis
	ok := false
	for _, m := range analyzedRE.FindAllStringSubmatch(out, -1) {
		okUpTo, _ := strconv.ParseInt(m[3], 10, 64)
		diff, _ := strconv.ParseInt(m[4], 10, 64)
		if diff > 0 {
			found, ok = analysis{file: m[1], okUpTo: okUpTo, diff: diff}, true
		}
	}
	return found, ok
}

// lastFile reports whether bad is the file Redis appends to: the single AOF, or
// the last file the manifest lists.
func lastFile(target, bad string) (bool, error) {
	if !strings.HasSuffix(target, ".manifest") {
		return filepath.Clean(target) == filepath.Clean(bad), nil
	}
	m, err := os.ReadFile(target)
	if err != nil {
		return false, fmt.Errorf("read the manifest: %w", err)
	}
	last := ""
	for _, line := range strings.Split(string(m), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i += 2 {
			if f[i] == "file" {
				last = f[i+1]
			}
		}
	}
	return last != "" && filepath.Base(bad) == last, nil
}

// tornTail reports whether what follows the last valid byte is one incomplete
// command: a write cut short. A complete command after it ("\r\n*<n>\r\n$")
// means the damage is in the middle, with real data after it.
func tornTail(path string, okUpTo int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	tail, err := io.ReadAll(io.NewSectionReader(f, okUpTo, 1<<30))
	if err != nil {
		return false
	}
	return !commandStartRE.Match(tail)
}

var commandStartRE = regexp.MustCompile(`\r\n\*\d+\r\n\$`)

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
