package monitor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultAppendFilename is Redis's default appendfilename, used when the config
// is not known.
const DefaultAppendFilename = "appendonly.aof"

// ScanTempFiles lists Redis's own temp files: the names ParseTempFileName accepts in
// dir, and temp-<appendFilename>.incr and temp-<appendFilename>.manifest in aofDir
// (skipped when aofDir is empty or absent). Only regular files are reported, checked
// with Lstat, so a symlink or directory with a temp name is never offered for
// deletion. PIDAlive is looked up under procRoot. It returns what it found together
// with any error, so one unreadable entry does not hide the others.
func ScanTempFiles(dir, aofDir, appendFilename string, procRoot string) ([]TempFile, error) {
	procRoot = procRootOr(procRoot)
	if appendFilename == "" {
		appendFilename = DefaultAppendFilename
	}
	var files []TempFile
	var errs []error

	if dir != "" {
		found, err := scanTempDir(dir, procRoot, func(name string) (TempFileKind, int, bool) {
			return ParseTempFileName(name)
		})
		files = append(files, found...)
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Redis refuses an appendfilename with a path in it; a config claiming one is
	// not trusted to build names to delete.
	if aofDir != "" && !strings.ContainsAny(appendFilename, "/\\\x00") {
		incr := "temp-" + appendFilename + ".incr"
		manifest := "temp-" + appendFilename + ".manifest"
		found, err := scanTempDir(aofDir, procRoot, func(name string) (TempFileKind, int, bool) {
			switch name {
			case incr:
				return TempAOFIncr, 0, true
			case manifest:
				return TempAOFManifest, 0, true
			}
			return "", 0, false
		})
		files = append(files, found...)
		// No AOF dir simply means AOF was never enabled (or Redis < 7.0).
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	} else if aofDir != "" {
		errs = append(errs, fmt.Errorf("scan temp files: appendfilename %q contains a path separator", appendFilename))
	}

	slices.SortFunc(files, func(a, b TempFile) int { return strings.Compare(a.Path, b.Path) })
	return files, errors.Join(errs...)
}

// scanTempDir reports the regular files of dir whose names match.
func scanTempDir(dir, procRoot string, match func(string) (TempFileKind, int, bool)) ([]TempFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("scan temp files in %s: %w", dir, err)
	}
	var files []TempFile
	var errs []error
	for _, e := range entries {
		kind, pid, ok := match(e.Name())
		if !ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		// ReadDir's type may be unknown on some filesystems; Lstat is the authority
		// and never follows a symlink.
		fi, err := os.Lstat(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // gone since ReadDir: Redis finished
				errs = append(errs, fmt.Errorf("stat temp file: %w", err))
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, TempFile{
			Path:     p,
			Kind:     kind,
			Size:     fi.Size(),
			ModTime:  fi.ModTime(),
			PID:      pid,
			PIDAlive: pidAlive(procRoot, pid),
		})
	}
	return files, errors.Join(errs...)
}

// ErrNotTempFile means a path is not one of Redis's own temp files.
var ErrNotTempFile = errors.New("not a Redis temp file")

// StatTempFile identifies path again as ScanTempFiles did, for the re-check right
// before a deletion: by its name (ParseTempFileName, or the AOF directory's
// temp-<appendfilename>.incr/.manifest), as a regular file (Lstat, never following a
// symlink), with its pid's liveness under procRoot. A file that is gone returns an
// error matching fs.ErrNotExist; anything else that is not a temp file,
// ErrNotTempFile.
func StatTempFile(path, procRoot string) (TempFile, error) {
	procRoot = procRootOr(procRoot)
	name := filepath.Base(path)
	kind, pid, ok := ParseTempFileName(name)
	if !ok && strings.HasPrefix(name, "temp-") && !strings.ContainsAny(name, "/\\\x00") {
		switch {
		case strings.HasSuffix(name, ".incr"):
			kind, ok = TempAOFIncr, true
		case strings.HasSuffix(name, ".manifest"):
			kind, ok = TempAOFManifest, true
		}
	}
	if !ok {
		return TempFile{}, fmt.Errorf("%s: %w", path, ErrNotTempFile)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return TempFile{}, fmt.Errorf("stat temp file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return TempFile{}, fmt.Errorf("%s is not a regular file: %w", path, ErrNotTempFile)
	}
	return TempFile{Path: path, Kind: kind, Size: fi.Size(), ModTime: fi.ModTime(), PID: pid, PIDAlive: pidAlive(procRoot, pid)}, nil
}

// pidAlive tells whether a process with that pid exists in procRoot. A stat error
// other than "not exist" leaves the answer Unknown, so nothing is deleted on a guess.
func pidAlive(procRoot string, pid int) Tri {
	if pid <= 0 {
		return Unknown
	}
	_, err := os.Stat(filepath.Join(procRoot, strconv.Itoa(pid)))
	switch {
	case err == nil:
		return Yes
	case errors.Is(err, fs.ErrNotExist):
		return No
	default:
		return Unknown
	}
}

// ParseTempFileName recognises the temp files Redis writes in its `dir`, by their
// exact names: temp-<pid>.rdb (BGSAVE child, or SAVE), temp-<unixtime>.<pid>.rdb
// (replica full sync, pid of the main process), temp-rewriteaof-bg-<pid>.aof and
// temp-rewriteaof-<pid>.aof. Numbers are what Redis prints with %d: digits only,
// no sign, no leading zero. Anything else, including a name with a path separator,
// is rejected, because a match may end up deleted. The AOF directory's temp files
// depend on appendfilename and are matched by ScanTempFiles.
func ParseTempFileName(name string) (kind TempFileKind, pid int, ok bool) {
	if strings.ContainsAny(name, "/\\\x00") {
		return "", 0, false
	}
	if rest, found := strings.CutPrefix(name, "temp-rewriteaof-bg-"); found {
		if num, found := strings.CutSuffix(rest, ".aof"); found {
			if p, ok := parsePID(num); ok {
				return TempRewriteBg, p, true
			}
		}
		return "", 0, false
	}
	if rest, found := strings.CutPrefix(name, "temp-rewriteaof-"); found {
		if num, found := strings.CutSuffix(rest, ".aof"); found {
			if p, ok := parsePID(num); ok {
				return TempRewrite, p, true
			}
		}
		return "", 0, false
	}
	rest, found := strings.CutPrefix(name, "temp-")
	if !found {
		return "", 0, false
	}
	nums, found := strings.CutSuffix(rest, ".rdb")
	if !found {
		return "", 0, false
	}
	if first, second, two := strings.Cut(nums, "."); two {
		if _, ok := parseDecimal(first); !ok {
			return "", 0, false
		}
		if p, ok := parsePID(second); ok {
			return TempReplSync, p, true
		}
		return "", 0, false
	}
	if p, ok := parsePID(nums); ok {
		return TempBgsave, p, true
	}
	return "", 0, false
}

// parsePID parses a pid as Redis prints it; 0 is no pid.
func parsePID(s string) (int, bool) {
	v, ok := parseDecimal(s)
	if !ok || v == 0 {
		return 0, false
	}
	return v, true
}

// parseDecimal accepts only what printf %d prints for a non-negative int32.
func parseDecimal(s string) (int, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(v), true
}
