package testredis

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountBlockDisk makes an ext4 file system on a loop device backed by a file in
// Dir and mounts it as DataDir (owned by redis). t.Cleanup unmounts it and frees
// the loop device, even when the test fails.
func (s *Server) mountBlockDisk(t testing.TB) error {
	img := filepath.Join(s.Dir, "disk.img")
	if err := run("truncate", "-s", s.opts.BlockDisk, img); err != nil {
		return fmt.Errorf("create %s: %w", img, err)
	}
	dev, err := output("losetup", "--find", "--show", img)
	if err != nil {
		return fmt.Errorf("losetup %s: %w", img, err)
	}
	dev = strings.TrimSpace(dev)
	t.Cleanup(func() {
		if err := unmount(s.DataDir); err != nil {
			t.Errorf("testredis: %v", err)
		}
		if err := run("losetup", "-d", dev); err != nil {
			t.Errorf("testredis: free %s: %v", dev, err)
		}
	})
	if err := run("mkfs.ext4", "-q", "-F", dev); err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w", dev, err)
	}
	if err := run("mount", dev, s.DataDir); err != nil {
		return fmt.Errorf("mount %s on the data dir: %w", dev, err)
	}
	if err := os.Chown(s.DataDir, s.uid, s.gid); err != nil {
		return err
	}
	s.blockDev = dev
	return os.Chmod(s.DataDir, 0o750)
}

// blkioRoot is the cgroup v1 blkio hierarchy, where SlowDisk throttles.
const blkioRoot = "/sys/fs/cgroup/blkio"

// SlowDisk throttles the server's writes to its data disk (Options.BlockDisk is
// required) to bps bytes per second, by moving the server into a cgroup v1 blkio
// cgroup with blkio.throttle.write_bps_device: a disk too slow for the AOF's
// fsync, for real. Fork children inherit the cgroup. The returned func lifts it;
// t.Cleanup does so too.
func (s *Server) SlowDisk(t testing.TB, bps int64) (lift func()) {
	t.Helper()
	if s.blockDev == "" {
		t.Fatal("testredis: SlowDisk needs Options.BlockDisk (the data dir must be a block device)")
	}
	if _, err := os.Stat(filepath.Join(blkioRoot, "blkio.throttle.write_bps_device")); err != nil {
		t.Fatalf("testredis: SlowDisk needs the cgroup v1 blkio controller at %s: %v", blkioRoot, err)
	}
	p, err := s.running()
	if err != nil {
		t.Fatalf("testredis: SlowDisk: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(s.blockDev, &st); err != nil {
		t.Fatalf("testredis: SlowDisk: stat %s: %v", s.blockDev, err)
	}
	devno := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	cg := filepath.Join(blkioRoot, fmt.Sprintf("rg-test-%d", p.pid))
	if err := os.Mkdir(cg, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatalf("testredis: SlowDisk: %v", err)
	}
	write := func(file, v string) error { return os.WriteFile(filepath.Join(cg, file), []byte(v), 0o644) }
	if err := write("blkio.throttle.write_bps_device", devno+" "+strconv.FormatInt(bps, 10)); err != nil {
		t.Fatalf("testredis: SlowDisk: throttle %s: %v", devno, err)
	}
	// Every thread of the server (the fsync runs in a background thread).
	if err := write("cgroup.procs", strconv.Itoa(p.pid)); err != nil {
		t.Fatalf("testredis: SlowDisk: move %d: %v", p.pid, err)
	}
	return lifter(t, "SlowDisk", func() error {
		if data, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(data)) {
				_ = os.WriteFile(filepath.Join(blkioRoot, "cgroup.procs"), []byte(pid), 0o644)
			}
		}
		if err := syscall.Rmdir(cg); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("remove cgroup %s: %w", cg, err)
		}
		return nil
	})
}
