package monitor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeHost is a /proc and /sys tree in a temp dir holding one Redis process.
type fakeHost struct {
	proc, sys, data string
	pid             int
}

const fakePID = 4242

// newFakeHost builds a host where Redis (pid 4242) runs as the test's own uid in
// the cgroup /system.slice/redis-server.service, whose parent is limited to 1 GiB.
func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	root := t.TempDir()
	f := &fakeHost{
		proc: filepath.Join(root, "proc"),
		sys:  filepath.Join(root, "sys"),
		data: filepath.Join(root, "data"),
		pid:  fakePID,
	}
	uid, gid := os.Getuid(), os.Getgid()
	// The real uid (1000) is not the effective one (the test's, for writability):
	// RLIMIT_NPROC counts the real uid's tasks.
	status := fmt.Sprintf("Name:\tredis-server\nUid:\t1000\t%[1]d\t%[1]d\t%[1]d\nGid:\t%[2]d\t%[2]d\t%[2]d\t%[2]d\nGroups:\t%[2]d\nVmData:\t   10000 kB\nVmStk:\t     132 kB\nVmRSS:\t    6516 kB\nVmSwap:\t      12 kB\nThreads:\t5\n", uid, gid)
	files := map[string]string{
		f.procFile("comm"):    "redis-server\n",
		f.procFile("cmdline"): "redis-server *:6379\x00",
		f.procFile("status"):  status,
		f.procFile("limits"):  "Limit                     Soft Limit           Hard Limit           Units     \nMax processes             4096                 62987                processes \nMax open files            10032                10032                files     \n",
		// Other processes: uid 1000's tasks count against the limit, root's do not.
		filepath.Join(f.proc, "100", "status"): "Name:\tworker\nUid:\t1000\t1000\t1000\t1000\nThreads:\t3\n",
		filepath.Join(f.proc, "200", "status"): "Name:\tsystemd\nUid:\t0\t0\t0\t0\nThreads:\t9\n",
		// statm counts pages (4 KiB here): 1629 resident = VmRSS 6516 kB.
		f.procFile("statm"):                                                  "100000 1629 500 100 0 2000 0\n",
		f.procFile("smaps_rollup"):                                           hostFixture(t, "smaps_rollup-thp"),
		f.procFile("cgroup"):                                                 hostFixture(t, "cgroup-v2"),
		filepath.Join(f.proc, "meminfo"):                                     hostFixture(t, "meminfo"),
		filepath.Join(f.proc, "sys/vm/overcommit_memory"):                    "1\n",
		filepath.Join(f.sys, "kernel/mm/transparent_hugepage/enabled"):       hostFixture(t, "thp-madvise"),
		f.cgroupFile("/system.slice/redis-server.service", "memory.max"):     hostFixture(t, "memory.max-unlimited"),
		f.cgroupFile("/system.slice/redis-server.service", "memory.current"): hostFixture(t, "memory.current"),
		f.cgroupFile("/system.slice/redis-server.service", "memory.events"):  hostFixture(t, "memory.events"),
		f.cgroupFile("/system.slice/redis-server.service", "memory.stat"):    hostFixture(t, "memory.stat"),
		f.cgroupFile("/system.slice", "memory.max"):                          hostFixture(t, "memory.max-1g"),
		f.cgroupFile("/system.slice", "memory.current"):                      "900000000\n",
		f.cgroupFile("/", "cgroup.controllers"):                              "cpu io memory pids\n",
		filepath.Join(f.data, "dump.rdb"):                                    "REDIS0010",
		filepath.Join(f.data, "appendonlydir", "appendonly.aof.manifest"):    "m",
		filepath.Join(f.data, fmt.Sprintf("temp-%d.rdb", fakePID)):           "live",
		filepath.Join(f.data, "temp-999999.rdb"):                             "stale",
	}
	for p, content := range files {
		hostWriteFile(t, p, content)
	}
	if err := os.Symlink(f.data, f.procFile("cwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.data, 0o750); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeHost) procFile(name string) string {
	return filepath.Join(f.proc, strconv.Itoa(f.pid), name)
}

func (f *fakeHost) cgroupFile(cg, name string) string {
	return filepath.Join(f.sys, "fs", "cgroup", cg, name)
}

// cgroupV1 moves the fake Redis into the v1 memory cgroup of cgroup-hybrid, a
// group of this machine's, with the v1 fixtures captured from it (the files
// named v1-<file><suffix>), and returns its path. Its parent and the root have
// no limit.
func (f *fakeHost) cgroupV1(t *testing.T, suffix string) string {
	t.Helper()
	const own = "/process_api/0be81f01546c2a6feca45f6287b05ee3"
	hostWriteFile(t, f.procFile("cgroup"), hostFixture(t, "cgroup-hybrid"))
	for _, name := range []string{"memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat", "memory.oom_control", "memory.failcnt"} {
		fixture := "v1-" + name
		if name == "memory.oom_control" || name == "memory.failcnt" {
			fixture += suffix
		}
		hostWriteFile(t, f.cgroupV1File(own, name), hostFixture(t, fixture))
	}
	for _, cg := range []string{"/process_api", "/"} {
		hostWriteFile(t, f.cgroupV1File(cg, "memory.limit_in_bytes"), hostFixture(t, "v1-memory.limit_in_bytes-unlimited"))
		hostWriteFile(t, f.cgroupV1File(cg, "memory.usage_in_bytes"), "900000000\n")
	}
	return own
}

func (f *fakeHost) cgroupV1File(cg, name string) string {
	return filepath.Join(f.sys, "fs", "cgroup", "memory", cg, name)
}

func (f *fakeHost) source() *HostSource {
	return NewHostSource(HostOptions{ProcRoot: f.proc, SysRoot: f.sys})
}

func (f *fakeHost) target() HostTarget {
	return HostTarget{PID: f.pid, Dir: f.data, AOFDirName: "appendonlydir", DBFilename: "dump.rdb"}
}

// hostCmpOpts leave out what depends on the real filesystem under the temp dir.
func hostCmpOpts() cmp.Options {
	return cmp.Options{
		cmpopts.IgnoreFields(DirReading{}, "Total", "Free", "UsedPercent", "InodesTotal", "InodesFree", "WritableReason"),
		cmpopts.IgnoreFields(TempFile{}, "ModTime"),
		cmpopts.EquateEmpty(),
	}
}

// wantFakeReading is what Read returns for newFakeHost unchanged.
func wantFakeReading(f *fakeHost) HostReading {
	return HostReading{
		Available:         true,
		DataDir:           DirReading{Path: f.data, Known: true, Writable: Yes},
		AOFDir:            DirReading{Path: filepath.Join(f.data, "appendonlydir"), Known: true, Writable: Yes},
		RDBFileSize:       9,
		MemTotal:          24684092 * 1024,
		MemAvailable:      24267344 * 1024,
		SwapTotal:         2097152 * 1024,
		SwapFree:          1048576 * 1024,
		Overcommit:        1,
		THP:               "madvise",
		PID:               fakePID,
		ProcAnonHugePages: 4096 * 1024,
		ProcSwap:          12 * 1024,
		ProcRSS:           6516 * 1024,
		NprocLimit:        4096,
		NprocUID:          1000,
		UIDTasks:          8,
		ProcCommit:        10132 * 1024,
		CommitLimit:       -1,
		CommittedAS:       -1,
		Cgroup: CgroupReading{
			Known:         true,
			Version:       2,
			Path:          "/system.slice/redis-server.service",
			MemoryMax:     1 << 30,
			LimitPath:     "/system.slice",
			MemoryCurrent: 734003200,
			WorkingSet:    734003200 - 94371840, // inactive_file of memory.stat
			OOMKill:       2,
			Failcnt:       12, // max of memory.events
		},
		TempFiles: []TempFile{
			{Path: filepath.Join(f.data, "temp-4242.rdb"), Kind: TempBgsave, Size: 4, PID: fakePID, PIDAlive: Yes},
			{Path: filepath.Join(f.data, "temp-999999.rdb"), Kind: TempBgsave, Size: 5, PID: 999999, PIDAlive: No},
		},
	}
}

func TestHostSourceReadFakeTree(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// edit changes the fake host and the target, and returns the expected reading.
		edit func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading)
		// wantErrors are substrings, one per expected entry of Errors, in order.
		wantErrors []string
	}{
		{
			name: "everything readable",
			edit: func(*testing.T, *fakeHost, *HostTarget, *HostReading) {},
		},
		{
			name: "relative dir resolves against the process cwd",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				tg.Dir = "."
			},
		},
		{
			name: "unknown dir falls back to the process cwd",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				tg.Dir = ""
			},
		},
		{
			name: "no aof dir, no rdb file",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				removeAll(t, filepath.Join(f.data, "appendonlydir"), filepath.Join(f.data, "dump.rdb"))
				want.AOFDir = DirReading{}
				want.RDBFileSize = -1
			},
		},
		{
			name: "missing data dir",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				tg.Dir = filepath.Join(f.data, "nope")
				want.DataDir = DirReading{Path: tg.Dir}
				want.AOFDir = DirReading{}
				want.RDBFileSize = -1
				want.TempFiles = nil
			},
			wantErrors: []string{"data dir: stat", "temp files: scan temp files in"},
		},
		{
			name: "unreadable process files",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				removeAll(t, f.procFile("status"), f.procFile("smaps_rollup"), f.procFile("cgroup"))
				want.ProcRSS, want.ProcSwap, want.ProcAnonHugePages = -1, -1, -1
				want.NprocUID, want.UIDTasks, want.ProcCommit = -1, -1, -1
				want.DataDir.Writable, want.AOFDir.Writable = Unknown, Unknown
				want.Cgroup = CgroupReading{}
			},
			wantErrors: []string{"process: uids of process", "smaps_rollup:", "cgroup: read process cgroup"},
		},
		{
			name: "bad kernel settings",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, filepath.Join(f.proc, "sys/vm/overcommit_memory"), "7\n")
				removeAll(t, filepath.Join(f.sys, "kernel/mm/transparent_hugepage/enabled"), filepath.Join(f.proc, "meminfo"))
				want.Overcommit = -1
				want.THP = ""
				want.MemTotal, want.MemAvailable, want.SwapTotal, want.SwapFree = 0, 0, 0, 0
			},
			wantErrors: []string{"memory:", "overcommit: parse overcommit_memory", "thp:"},
		},
		{
			name: "strict overcommit reads the commit limit",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, filepath.Join(f.proc, "sys/vm/overcommit_memory"), "2\n")
				want.Overcommit = 2
				want.CommitLimit, want.CommittedAS = 12342044*1024, 443520*1024
			},
		},
		{
			name: "unlimited nproc counts no tasks",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, f.procFile("limits"), "Max processes             unlimited            unlimited            processes \n")
				want.NprocLimit, want.UIDTasks = 0, -1
			},
		},
		{
			name: "unreadable limits",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				removeAll(t, f.procFile("limits"))
				want.NprocLimit, want.UIDTasks = -1, -1
			},
			wantErrors: []string{"limits: open"},
		},
		{
			name: "cgroup v1",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				own := f.cgroupV1(t, "")
				want.Cgroup = CgroupReading{Known: true, Version: 1, Path: own, MemoryMax: 64 << 20, LimitPath: own,
					MemoryCurrent: 66281472, WorkingSet: 66281472 - 8388608}
			},
		},
		{
			name: "cgroup v1 after an OOM kill, the parent's limit tighter",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				own := f.cgroupV1(t, "-oom")
				hostWriteFile(t, f.cgroupV1File("/process_api", "memory.limit_in_bytes"), "33554432\n")
				want.Cgroup = CgroupReading{Known: true, Version: 1, Path: own, MemoryMax: 32 << 20, LimitPath: "/process_api",
					MemoryCurrent: 66281472, WorkingSet: 66281472 - 8388608, OOMKill: 1, Failcnt: 113}
			},
		},
		{
			name: "cgroup v1 without its memory files",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				own := f.cgroupV1(t, "")
				removeAll(t, filepath.Join(f.sys, "fs", "cgroup", "memory", own))
				want.Cgroup = CgroupReading{Version: 1, Path: own}
			},
			wantErrors: []string{"cgroup: no memory controller for cgroup v1 /process_api/"},
		},
		{
			name: "cgroup v1 on a kernel before 4.13 counts no OOM kills",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				own := f.cgroupV1(t, "")
				hostWriteFile(t, f.cgroupV1File(own, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\n")
				want.Cgroup = CgroupReading{Known: true, Version: 1, Path: own, MemoryMax: 64 << 20, LimitPath: own,
					MemoryCurrent: 66281472, WorkingSet: 66281472 - 8388608}
			},
		},
		{
			name: "own limit smaller than the parent's",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, f.cgroupFile("/system.slice/redis-server.service", "memory.max"), "536870912\n")
				want.Cgroup.MemoryMax = 512 << 20
				want.Cgroup.LimitPath = "/system.slice/redis-server.service"
			},
		},
		{
			name: "no limit anywhere",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, f.cgroupFile("/system.slice", "memory.max"), "max\n")
				want.Cgroup.MemoryMax = 0
				want.Cgroup.LimitPath = ""
			},
		},
		{
			name: "memory controller not enabled in the leaf uses the parent",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				leaf := "/system.slice/redis-server.service/payload"
				hostWriteFile(t, f.procFile("cgroup"), "0::"+leaf+"\n")
				hostWriteFile(t, f.cgroupFile(leaf, "cgroup.procs"), "4242\n")
				want.Cgroup.Path = leaf
			},
		},
		{
			name: "process in the root cgroup",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, f.procFile("cgroup"), "0::/\n")
				want.Cgroup = CgroupReading{Known: true, Version: 2, Path: "/"}
			},
		},
		{
			name: "cgroup outside the namespace",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, f.procFile("cgroup"), "0::/../../system.slice/redis-server.service\n")
				want.Cgroup = CgroupReading{Version: 2, Path: "/../../system.slice/redis-server.service"}
			},
			wantErrors: []string{"cgroup: cgroup /../../system.slice/redis-server.service is outside"},
		},
		{
			name: "bad memory.events",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, f.cgroupFile("/system.slice/redis-server.service", "memory.events"), "oom_kill many\n")
				want.Cgroup.Known = false
				want.Cgroup.OOMKill = 0
				want.Cgroup.Failcnt = 0
			},
			wantErrors: []string{"cgroup: parse memory.events oom_kill"},
		},
		{
			name: "bad memory.stat",
			edit: func(t *testing.T, f *fakeHost, tg *HostTarget, want *HostReading) {
				hostWriteFile(t, f.cgroupFile("/system.slice/redis-server.service", "memory.stat"), "inactive_file lots\n")
				want.Cgroup.Known = false
				want.Cgroup.WorkingSet = 0
			},
			wantErrors: []string{"cgroup: parse memory.stat inactive_file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeHost(t)
			tg := f.target()
			want := wantFakeReading(f)
			tt.edit(t, f, &tg, &want)

			got := f.source().Read(context.Background(), tg)

			gotErrors := got.Errors
			got.Errors, want.Errors = nil, nil
			if diff := cmp.Diff(want, got, hostCmpOpts()); diff != "" {
				t.Errorf("Read mismatch (-want +got):\n%s", diff)
			}
			if len(gotErrors) != len(tt.wantErrors) {
				t.Fatalf("Errors = %q, want %d entries like %q", gotErrors, len(tt.wantErrors), tt.wantErrors)
			}
			for i, w := range tt.wantErrors {
				if !strings.Contains(gotErrors[i], w) {
					t.Errorf("Errors[%d] = %q, want it to contain %q", i, gotErrors[i], w)
				}
			}
		})
	}
}

func removeAll(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostSourceNotAvailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		pid        int
		comm       string // written over the fake process's comm and cmdline when set
		wantReason string
	}{
		{name: "pid 0", pid: 0, wantReason: "redis process 0 not found on this host (remote, or another pid namespace)"},
		{name: "no such pid", pid: 77, wantReason: "redis process 77 not found on this host (remote, or another pid namespace)"},
		{name: "another program", pid: fakePID, comm: "bash", wantReason: `process 4242 on this host is "bash"`},
		{name: "valkey is fine", pid: fakePID, comm: "valkey-server"},
		{name: "the guardian's own name", pid: fakePID, comm: "redis-guardian", wantReason: `process 4242 on this host is "redis-guardian"`},
		{name: "redis-cli is no server", pid: fakePID, comm: "redis-cli", wantReason: `is "redis-cli"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeHost(t)
			if tt.comm != "" {
				hostWriteFile(t, f.procFile("comm"), tt.comm+"\n")
				hostWriteFile(t, f.procFile("cmdline"), tt.comm+"\x00")
			}
			tg := f.target()
			tg.PID = tt.pid
			got := f.source().Read(context.Background(), tg)
			if tt.wantReason == "" {
				if !got.Available {
					t.Fatalf("Available = false (%s), want true", got.Reason)
				}
				return
			}
			if got.Available || !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Available, Reason = %v, %q; want false, %q", got.Available, got.Reason, tt.wantReason)
			}
			if got.Overcommit != -1 || got.MemTotal != 0 || got.DataDir.Known {
				t.Errorf("unavailable reading has host facts filled in: %+v", got)
			}
		})
	}
}

func TestHostSourceCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := f.source().Read(ctx, f.target())
	if !got.Available || len(got.Errors) != 1 || !strings.Contains(got.Errors[0], "context canceled") {
		t.Errorf("Read with a cancelled context = Available %v, Errors %q; want one error saying it stopped", got.Available, got.Errors)
	}
}

func TestHostDirWritable(t *testing.T) {
	t.Parallel()
	redis := &ProcStatus{UID: 102, GID: 105, Groups: []int{105, 4}}
	tests := []struct {
		name       string
		dir        dirPerm
		cred       *ProcStatus
		readOnly   bool
		want       Tri
		wantReason string
	}{
		{name: "owner rwx", dir: dirPerm{uid: 102, gid: 105, mode: 0o700}, cred: redis, want: Yes},
		{name: "owner w without x", dir: dirPerm{uid: 102, gid: 105, mode: 0o600}, cred: redis, want: No},
		{name: "owner r-x", dir: dirPerm{uid: 102, gid: 105, mode: 0o577}, cred: redis, want: No},
		{name: "owner class wins over group", dir: dirPerm{uid: 102, gid: 105, mode: 0o070}, cred: redis, want: No},
		{name: "primary group", dir: dirPerm{uid: 0, gid: 105, mode: 0o770}, cred: redis, want: Yes},
		{name: "supplementary group", dir: dirPerm{uid: 0, gid: 4, mode: 0o2770}, cred: redis, want: Yes},
		{name: "group class wins over other", dir: dirPerm{uid: 0, gid: 4, mode: 0o757}, cred: redis, want: No},
		{name: "other", dir: dirPerm{uid: 0, gid: 0, mode: 0o1777}, cred: redis, want: Yes},
		{
			name: "root owned 0755", dir: dirPerm{path: "/var/lib/redis", uid: 0, gid: 0, mode: 0o755}, cred: redis, want: No,
			wantReason: "dir /var/lib/redis is owned by root:root mode 0755; redis process runs as uid 102 gid 105 groups 4, which may not create files there",
		},
		{
			name: "root process", dir: dirPerm{path: "/d", uid: 0, gid: 0, mode: 0o500}, cred: &ProcStatus{UID: 0, GID: 0}, want: Yes,
			wantReason: "dir /d is owned by root:root mode 0500; redis process runs as root",
		},
		{
			name: "read-only filesystem", dir: dirPerm{path: "/d", uid: 102, gid: 105, mode: 0o755}, cred: redis, readOnly: true, want: No,
			wantReason: "dir /d is owned by",
		},
		{name: "read-only beats root", dir: dirPerm{mode: 0o777}, cred: &ProcStatus{}, readOnly: true, want: No, wantReason: "read-only filesystem"},
		{name: "unknown process", dir: dirPerm{mode: 0o777}, want: Unknown, wantReason: "uid is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, reason := dirWritable(tt.dir, tt.cred, tt.readOnly)
			if got != tt.want {
				t.Errorf("dirWritable = %v (%s), want %v", got, reason, tt.want)
			}
			if !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", reason, tt.wantReason)
			}
		})
	}
}

// needRoot stops a test that needs root and the redis user: a failure on CI,
// where both are provided, and a skip elsewhere.
func needRoot(t *testing.T) *user.User {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		missing("needs root to run redis-server as the redis user and chown its dir")
	}
	u, err := user.Lookup("redis")
	if err != nil {
		missing("needs the redis user (apt-get install redis-server): %v", err)
	}
	for _, bin := range []string{"redis-server", "redis-cli", "setpriv"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing("needs %s: %v", bin, err)
		}
	}
	return u
}

// traversableTempDir makes a dir that the redis user can reach: every parent must
// be searchable by others. t.TempDir may sit under a 0700 dir, so try TMPDIR and
// then /tmp (1777).
func traversableTempDir(t *testing.T) string {
	t.Helper()
	for _, base := range []string{os.TempDir(), "/tmp"} {
		ok := true
		for p := base; ; p = filepath.Dir(p) {
			fi, err := os.Stat(p)
			if err != nil || fi.Mode().Perm()&0o001 == 0 {
				ok = false
				break
			}
			if p == "/" {
				break
			}
		}
		if !ok {
			continue
		}
		dir, err := os.MkdirTemp(base, "rg-host-")
		if err != nil {
			t.Fatalf("make temp dir: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	t.Fatal("no temp dir the redis user can traverse (TMPDIR and /tmp both closed)")
	return ""
}

func TestHostSourceRealRedis(t *testing.T) {
	redisUser := needRoot(t)
	uid, _ := strconv.Atoi(redisUser.Uid)
	gid, _ := strconv.Atoi(redisUser.Gid)

	dir := traversableTempDir(t)
	chownMode := func(uid, gid int, mode os.FileMode) {
		t.Helper()
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("chown %s: %v", dir, err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatalf("chmod %s: %v", dir, err)
		}
	}
	chownMode(uid, gid, 0o755)
	sock := filepath.Join(dir, "redis.sock")
	logFile := filepath.Join(dir, "redis.log")

	cmd := exec.Command("setpriv", "--reuid=redis", "--regid=redis", "--init-groups",
		"redis-server", "--port", "0", "--unixsocket", sock, "--dir", dir,
		"--logfile", logFile, "--save", "", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	// setpriv execs redis-server, so the pid is Redis's.
	pid := cmd.Process.Pid
	redisLog := func() string {
		b, _ := os.ReadFile(logFile)
		return string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("redis-server exited at start-up: %v\nlog:\n%s", err, redisLog())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not create %s within 10s\nlog:\n%s", sock, redisLog())
		}
	}
	// cli returns Redis's reply; redis-cli exits non-zero on an error reply, so
	// failures are judged by the caller.
	cli := func(args ...string) string {
		t.Helper()
		out, _ := exec.Command("redis-cli", append([]string{"-s", sock}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}

	h := NewHostSource(HostOptions{})
	target := HostTarget{PID: pid, Dir: dir, AOFDirName: "appendonlydir", DBFilename: "dump.rdb"}
	ctx := context.Background()

	start := time.Now()
	r := h.Read(ctx, target)
	elapsed := time.Since(start)
	t.Logf("Read took %v; errors: %q", elapsed, r.Errors)
	if !r.Available {
		t.Fatalf("Available = false: %s", r.Reason)
	}
	if r.PID != pid || r.ProcRSS <= 0 || r.ProcSwap < 0 || r.ProcAnonHugePages < 0 {
		t.Errorf("process facts = pid %d rss %d swap %d anonhuge %d; want pid %d and known values",
			r.PID, r.ProcRSS, r.ProcSwap, r.ProcAnonHugePages, pid)
	}
	if r.MemTotal == 0 || r.MemAvailable == 0 || r.Overcommit < 0 {
		t.Errorf("memory/kernel facts missing: MemTotal %d MemAvailable %d Overcommit %d", r.MemTotal, r.MemAvailable, r.Overcommit)
	}
	if !r.DataDir.Known || r.DataDir.Total == 0 || r.DataDir.Path != dir {
		t.Errorf("DataDir = %+v, want known usage of %s", r.DataDir, dir)
	}
	if r.DataDir.Writable != Yes {
		t.Errorf("DataDir.Writable = %v (%s), want yes", r.DataDir.Writable, r.DataDir.WritableReason)
	}
	if r.RDBFileSize != -1 || r.AOFDir.Known || len(r.TempFiles) != 0 {
		t.Errorf("RDBFileSize %d, AOFDir %+v, TempFiles %+v; want none of them on a fresh server", r.RDBFileSize, r.AOFDir, r.TempFiles)
	}
	// Only the cgroup may fail on a machine with the memory controller on v1.
	for _, e := range r.Errors {
		if !strings.HasPrefix(e, "cgroup:") {
			t.Errorf("unexpected error: %s", e)
		}
	}
	// Speed is BenchmarkHostRead's business (make bench), not a timed assertion.
	t.Logf("Read took %v", elapsed)

	t.Run("root-owned dir is not writable", func(t *testing.T) {
		chownMode(0, 0, 0o755)
		defer chownMode(uid, gid, 0o755)
		r := h.Read(ctx, target)
		if r.DataDir.Writable != No {
			t.Errorf("DataDir.Writable = %v (%s), want no", r.DataDir.Writable, r.DataDir.WritableReason)
		}
		want := fmt.Sprintf("is owned by root:root mode 0755; redis process runs as uid %d gid %d", uid, gid)
		if !strings.Contains(r.DataDir.WritableReason, want) {
			t.Errorf("WritableReason = %q, want it to contain %q", r.DataDir.WritableReason, want)
		}
		// Redis itself agrees: a save cannot create its temp file.
		if out := cli("SAVE"); !strings.Contains(out, "ERR") {
			t.Errorf("SAVE in a root-owned dir = %q, want an error", out)
		}
	})

	t.Run("bgsave temp file of a live child", func(t *testing.T) {
		cli("EVAL", "for i=1,200 do redis.call('SET','k'..i,i) end", "0")
		// 100 ms per key keeps the child alive long enough to be seen.
		if out := cli("CONFIG", "SET", "rdb-key-save-delay", "100000"); out != "OK" {
			t.Fatalf("CONFIG SET rdb-key-save-delay = %q", out)
		}
		if out := cli("BGSAVE"); !strings.Contains(out, "started") {
			t.Fatalf("BGSAVE = %q", out)
		}
		var found []TempFile
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			r := h.Read(ctx, target)
			found = slices.DeleteFunc(r.TempFiles, func(f TempFile) bool { return f.Kind != TempBgsave })
			if len(found) > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(found) != 1 {
			t.Fatalf("bgsave temp files = %+v, want one", found)
		}
		f := found[0]
		if f.PID == pid || f.PIDAlive != Yes || filepath.Dir(f.Path) != dir {
			t.Errorf("temp file = %+v; want the live child's (parent pid %d) in %s", f, pid, dir)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.PID))
		if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", pid)) {
			t.Errorf("pid %d in the temp file name is not a child of redis %d (%v):\n%s", f.PID, pid, err, status)
		}
		// Shutdown kills the child and removes its temp file.
	})
}

// TestHostSourceCache: settings that change rarely are read once per TTL (the cost
// that made the tick slow), what decides a remedy now is read every time, and a
// negative CacheTTL turns the cache off.
func TestHostSourceCache(t *testing.T) {
	t.Parallel()
	f := newFakeHost(t)
	cachedSrc := f.source()
	uncached := NewHostSource(HostOptions{ProcRoot: f.proc, SysRoot: f.sys, CacheTTL: -1})
	before := cachedSrc.Read(context.Background(), f.target())
	if before.Overcommit != 1 {
		t.Fatalf("Overcommit = %d before the change, want the fixture's 1", before.Overcommit)
	}
	hostWriteFile(t, filepath.Join(f.proc, "sys/vm/overcommit_memory"), "2\n")
	hostWriteFile(t, f.procFile("statm"), "100000 2500 500 100 0 2000 0\n") // 10000 kB resident

	got := cachedSrc.Read(context.Background(), f.target())
	if got.Overcommit != 1 {
		t.Errorf("cached Overcommit = %d right after the change, want 1 until the TTL passes", got.Overcommit)
	}
	if got.ProcRSS != 10000*1024 {
		t.Errorf("ProcRSS = %d, want %d: process memory is read every time", got.ProcRSS, 10000*1024)
	}
	if got := uncached.Read(context.Background(), f.target()); got.Overcommit != 2 {
		t.Errorf("uncached Overcommit = %d, want the new 2", got.Overcommit)
	}
}

// TestHostSourceRefusesItself: a sidecar without a shared pid namespace sees
// Redis report a pid that is the guardian's own here; the readings must not come
// from the guardian (its name alone, redis-guardian, once passed for Redis).
func TestHostSourceRefusesItself(t *testing.T) {
	t.Parallel()
	h := NewHostSource(HostOptions{})
	got := h.Read(context.Background(), HostTarget{PID: os.Getpid(), Dir: t.TempDir(), AOFDirName: "appendonlydir", DBFilename: "dump.rdb"})
	if got.Available || !strings.Contains(got.Reason, "the guardian itself") {
		t.Errorf("Available, Reason = %v, %q; want the guardian's own pid refused", got.Available, got.Reason)
	}
}

// TestUIDTasksReuse: a count far below the limit is reused (counting walks every
// process), a count near it is taken again at once.
func TestUIDTasksReuse(t *testing.T) {
	t.Parallel()
	f := newFakeHost(t)
	h := NewHostSource(HostOptions{ProcRoot: f.proc, SysRoot: f.sys})
	if n, err := h.uidTasks(1000, 4096); err != nil || n != 8 {
		t.Fatalf("first count = %d, %v; want 8", n, err)
	}
	hostWriteFile(t, filepath.Join(f.proc, "300", "status"), "Name:\tworker\nUid:\t1000\t1000\t1000\t1000\nThreads:\t100\n")
	if n, _ := h.uidTasks(1000, 4096); n != 8 {
		t.Errorf("far from the limit: count = %d, want the reused 8", n)
	}
	if n, _ := h.uidTasks(1000, 12); n != 108 {
		t.Errorf("near the limit: count = %d, want a new count of 108", n)
	}
	if n, _ := NewHostSource(HostOptions{ProcRoot: f.proc, SysRoot: f.sys, CacheTTL: -1}).uidTasks(1000, 4096); n != 108 {
		t.Errorf("caching off: count = %d, want 108", n)
	}
}
