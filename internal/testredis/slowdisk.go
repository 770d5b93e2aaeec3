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

// mountBlockDisk mounts an ext4 loop disk of Options.BlockDisk as DataDir, owned
// by redis.
func (s *Server) mountBlockDisk(t testing.TB) error {
	dev, err := mountLoopExt4(t, filepath.Join(s.Dir, "disk.img"), s.DataDir, s.opts.BlockDisk)
	if err != nil {
		return err
	}
	if err := os.Chown(s.DataDir, s.uid, s.gid); err != nil {
		return err
	}
	s.blockDev = dev
	return os.Chmod(s.DataDir, 0o750)
}

// BlockDir mounts a fresh ext4 file system of size (truncate's syntax, e.g.
// "64M") on dir, on a loop device backed by a file beside it, and returns the
// device: a disk of its own, which ThrottleWrites can slow down for one process.
// t.Cleanup unmounts it and frees the device, even when the test fails.
func BlockDir(t testing.TB, dir, size string) (dev string) {
	t.Helper()
	dev, err := mountLoopExt4(t, filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".img"), dir, size)
	if err != nil {
		t.Fatalf("testredis: BlockDir: %v", err)
	}
	return dev
}

// mountLoopExt4 makes an ext4 file system in img (size bytes, sparse) on a loop
// device and mounts it on dir.
func mountLoopExt4(t testing.TB, img, dir, size string) (string, error) {
	if err := run("truncate", "-s", size, img); err != nil {
		return "", fmt.Errorf("create %s: %w", img, err)
	}
	dev, err := output("losetup", "--find", "--show", img)
	if err != nil {
		return "", fmt.Errorf("losetup %s: %w", img, err)
	}
	dev = strings.TrimSpace(dev)
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("testredis: %v", err)
		}
		if err := run("losetup", "-d", dev); err != nil {
			t.Errorf("testredis: free %s: %v", dev, err)
		}
	})
	if err := run("mkfs.ext4", "-q", "-F", dev); err != nil {
		return "", fmt.Errorf("mkfs.ext4 %s: %w", dev, err)
	}
	if err := run("mount", dev, dir); err != nil {
		return "", fmt.Errorf("mount %s on %s: %w", dev, dir, err)
	}
	return dev, nil
}

// blkioRoot is the cgroup v1 blkio hierarchy, where SlowDisk throttles.
const blkioRoot = "/sys/fs/cgroup/blkio"

// SlowDisk throttles the server's writes to its data disk (Options.BlockDisk is
// required) to bps bytes per second: a disk too slow for the AOF's fsync, for
// real. Fork children inherit the throttle. The returned func lifts it;
// t.Cleanup does so too.
func (s *Server) SlowDisk(t testing.TB, bps int64) (lift func()) {
	t.Helper()
	if s.blockDev == "" {
		t.Fatal("testredis: SlowDisk needs Options.BlockDisk (the data dir must be a block device)")
	}
	p, err := s.running()
	if err != nil {
		t.Fatalf("testredis: SlowDisk: %v", err)
	}
	// Every thread of the server: the AOF's fsync runs in a background thread.
	return ThrottleWrites(t, p.pid, s.blockDev, "blkio.throttle.write_bps_device", bps)
}

// ThrottleWrites moves process pid (every thread, and what it forks later) into
// a cgroup v1 blkio cgroup that limits the writes it submits to dev: file is
// blkio.throttle.write_bps_device (bytes per second) or
// blkio.throttle.write_iops_device (operations per second). An fsync submits its
// writes in the caller's context, so it waits for the throttle; buffered writes
// that the kernel's flusher writes back later do not. The returned func moves the
// process back and removes the cgroup; t.Cleanup does so too.
func ThrottleWrites(t testing.TB, pid int, dev, file string, limit int64) (lift func()) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(blkioRoot, file)); err != nil {
		t.Fatalf("testredis: ThrottleWrites needs the cgroup v1 blkio controller at %s: %v", blkioRoot, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatalf("testredis: ThrottleWrites: stat %s: %v", dev, err)
	}
	devno := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	cg := filepath.Join(blkioRoot, fmt.Sprintf("rg-test-%d", pid))
	if err := os.Mkdir(cg, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatalf("testredis: ThrottleWrites: %v", err)
	}
	write := func(name, v string) error { return os.WriteFile(filepath.Join(cg, name), []byte(v), 0o644) }
	if err := write(file, devno+" "+strconv.FormatInt(limit, 10)); err != nil {
		t.Fatalf("testredis: ThrottleWrites: %s %s: %v", file, devno, err)
	}
	if err := write("cgroup.procs", strconv.Itoa(pid)); err != nil {
		t.Fatalf("testredis: ThrottleWrites: move %d: %v", pid, err)
	}
	return lifter(t, "ThrottleWrites", func() error {
		if data, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err == nil {
			for _, p := range strings.Fields(string(data)) {
				_ = os.WriteFile(filepath.Join(blkioRoot, "cgroup.procs"), []byte(p), 0o644)
			}
		}
		if err := syscall.Rmdir(cg); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("remove cgroup %s: %w", cg, err)
		}
		return nil
	})
}
