package monitor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The dirs reader: Redis's data dir and AOF dir (usage, writability by the
// Redis process), the size of its RDB file, and its temp files (tempfiles.go).

// readDirs fills r's directory readings for t; cred (nil when unknown) decides
// writability.
func (h *HostSource) readDirs(ctx context.Context, t HostTarget, cred *ProcStatus, r *HostReading, errf errorf) {
	dir := h.dataDir(t, errf)
	if dir == "" {
		return
	}
	var err error
	r.DataDir, err = readDirReading(ctx, dir, cred, h.ownerName)
	if err != nil {
		errf("data dir: %v", err)
	}
	aofDir := ""
	if t.AOFDirName != "" {
		p := filepath.Join(dir, t.AOFDirName)
		if _, err := os.Stat(p); err == nil {
			aofDir = p
			r.AOFDir, err = readDirReading(ctx, p, cred, h.ownerName)
			if err != nil {
				errf("aof dir: %v", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			errf("aof dir: %v", err)
		}
	}
	if t.DBFilename != "" {
		fi, err := os.Stat(filepath.Join(dir, t.DBFilename))
		switch {
		case err == nil && fi.Mode().IsRegular():
			r.RDBFileSize = fi.Size()
		case err == nil:
			errf("rdb file: %s is not a regular file", filepath.Join(dir, t.DBFilename))
		case !errors.Is(err, fs.ErrNotExist):
			errf("rdb file: %v", err)
		}
	}
	files, err := ScanTempFiles(dir, aofDir, t.AppendFilename, h.procRoot)
	r.TempFiles = files
	if err != nil {
		errf("temp files: %v", err)
	}
}

// dataDir is Redis's dir as an absolute path, "" when unknown. CONFIG GET may be
// renamed or denied; Redis chdir()s into its dir, so its working directory is
// then the same answer. A relative dir is resolved against that working
// directory too, as Redis does.
func (h *HostSource) dataDir(t HostTarget, errf errorf) string {
	dir, err := resolveAgainstCwd(h.procRoot, t.PID, t.Dir)
	switch {
	case err != nil && t.Dir == "":
		errf("data dir: not known from config, and the process's cwd: %v", err)
	case err != nil:
		errf("data dir: resolve relative dir %q: %v", t.Dir, err)
	}
	return dir
}

// readDirReading reads the disk usage and writability of a directory. A DirReading with
// Known=false comes back with the error.
func readDirReading(ctx context.Context, path string, cred *ProcStatus, owner func(uid, gid int) string) (DirReading, error) {
	d := DirReading{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return d, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.IsDir() {
		return d, fmt.Errorf("%s is not a directory", path)
	}
	// One statfs gives usage and the read-only flag (gopsutil's disk.Usage did a
	// second one, and allocated, for the same numbers).
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return d, fmt.Errorf("disk usage of %s: statfs: %w", path, err)
	}
	d.Known = true
	d.Total, d.Free, d.UsedPercent = statfsUsage(sfs)
	d.InodesTotal, d.InodesFree = sfs.Files, sfs.Ffree

	readOnly := sfs.Flags&unix.ST_RDONLY != 0
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		d.WritableReason = "owner of " + path + " unknown"
		return d, nil
	}
	perm := dirPerm{path: path, uid: int(st.Uid), gid: int(st.Gid), mode: fi.Mode(), owner: owner(int(st.Uid), int(st.Gid))}
	d.Writable, d.WritableReason = dirWritable(perm, cred, readOnly)
	return d, nil
}

// statfsUsage returns the size and the space free to unprivileged users, and the
// used percentage as df shows it: used / (used + available), so the blocks reserved
// for root count neither as free nor as used.
func statfsUsage(s unix.Statfs_t) (total, free uint64, usedPercent float64) {
	bsize := uint64(s.Bsize)
	total = s.Blocks * bsize
	free = s.Bavail * bsize
	used := (s.Blocks - s.Bfree) * bsize
	if used+free > 0 {
		usedPercent = float64(used) / float64(used+free) * 100
	}
	return total, free, usedPercent
}

// dirPerm is what writability depends on, apart from the process.
type dirPerm struct {
	path     string
	uid, gid int
	mode     fs.FileMode
	// owner is "user:group" by name; empty means look the names up.
	owner string
}

// dirWritable decides whether a process with cred may create files in a directory.
// It applies the classic permission check: the owner class when the uid owns the
// directory, else the group class when any of its gids matches, else other; write
// and search (w+x) are both needed. It ignores ACLs and capabilities other than
// root's, and does not check the parents: Redis chdir()s into dir at start-up and
// writes relative names, so the parents' modes no longer matter to it.
func dirWritable(d dirPerm, cred *ProcStatus, readOnly bool) (Tri, string) {
	owner := d.owner
	if owner == "" {
		owner = ownerName(d.uid, d.gid)
	}
	desc := fmt.Sprintf("dir %s is owned by %s mode %04o", d.path, owner, d.mode.Perm())
	if readOnly {
		return No, desc + " on a read-only filesystem"
	}
	if cred == nil {
		return Unknown, desc + "; the redis process's uid is unknown"
	}
	who := fmt.Sprintf("redis process runs as uid %d gid %d", cred.UID, cred.GID)
	if extra := slices.DeleteFunc(slices.Clone(cred.Groups), func(g int) bool { return g == cred.GID }); len(extra) > 0 {
		who += fmt.Sprintf(" groups %s", joinIDs(extra))
	}
	if cred.UID == 0 {
		return Yes, desc + "; redis process runs as root"
	}
	perm := d.mode.Perm()
	var need, class fs.FileMode
	switch {
	case cred.UID == d.uid:
		need, class = 0o300, 0o700
	case cred.GID == d.gid || slices.Contains(cred.Groups, d.gid):
		need, class = 0o030, 0o070
	default:
		need, class = 0o003, 0o007
	}
	if perm&class&need == need {
		return Yes, desc + "; " + who
	}
	return No, desc + "; " + who + ", which may not create files there"
}

// ownerName is "user:group" by name where known.
func ownerName(uid, gid int) string {
	return idName(uid, true) + ":" + idName(gid, false)
}

// ownerName is the cached ownerName: looking names up parses /etc/passwd and
// /etc/group (or asks NSS) on every call.
func (h *HostSource) ownerName(uid, gid int) string {
	s, _ := cached(h.cache, "owner "+strconv.Itoa(uid)+":"+strconv.Itoa(gid), func() (string, error) {
		return ownerName(uid, gid), nil
	})
	return s
}

// idName shows a uid or gid by name when the host's user database knows it. Redis
// and the guardian share that database when Redis is local.
func idName(id int, isUser bool) string {
	s := strconv.Itoa(id)
	if isUser {
		if u, err := user.LookupId(s); err == nil {
			return u.Username
		}
	} else if g, err := user.LookupGroupId(s); err == nil {
		return g.Name
	}
	return s
}

func joinIDs(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
