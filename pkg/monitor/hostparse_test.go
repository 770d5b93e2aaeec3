package monitor

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// hostFixture returns the text of testdata/host/<name>.
func hostFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "host", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return string(b)
}

func TestParseTHP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "madvise fixture", in: hostFixture(t, "thp-madvise"), want: "madvise"},
		{name: "always fixture", in: hostFixture(t, "thp-always"), want: "always"},
		{name: "never fixture", in: hostFixture(t, "thp-never"), want: "never"},
		{name: "defrag style", in: "always defer defer+madvise [madvise] never\n", want: "madvise"},
		{name: "no selection", in: "always madvise never\n", wantErr: true},
		{name: "empty brackets", in: "[] always\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTHP(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseTHP(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseTHP(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHostParseOvercommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "0\n", want: 0},
		{in: "1\n", want: 1},
		{in: "2", want: 2},
		{in: "3\n", want: -1, wantErr: true},
		{in: "x\n", want: -1, wantErr: true},
		{in: "", want: -1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseOvercommit(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseOvercommit(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseSmapsRollup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "redis 7.0.15 no thp", in: hostFixture(t, "smaps_rollup-redis-7.0.15"), want: 0},
		{name: "thp in use", in: hostFixture(t, "smaps_rollup-thp"), want: 4096 * 1024},
		{name: "full smaps sums", in: "AnonHugePages:      2048 kB\nRss: 1 kB\nAnonHugePages:      2048 kB\n", want: 4096 * 1024},
		{name: "missing line", in: "Rss: 10 kB\n", want: -1, wantErr: true},
		{name: "bad unit", in: "AnonHugePages: 2048 MB\n", want: -1, wantErr: true},
		{name: "bad number", in: "AnonHugePages: x kB\n", want: -1, wantErr: true},
		{name: "negative", in: "AnonHugePages: -1 kB\n", want: -1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSmapsRollup(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSmapsRollup() = %d, %v; want %d, err %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestHostParseProcStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    ProcStatus
		wantErr bool
	}{
		{
			name: "redis 7.0.15 as redis user",
			in:   hostFixture(t, "status-redis-7.0.15"),
			want: ProcStatus{Name: "redis-server", UID: 102, GID: 105, Groups: []int{105}, VmRSS: 6516 * 1024, VmSwap: 0,
				RealUID: 102, Threads: 5, VmData: 43880 * 1024, VmStk: 132 * 1024},
		},
		{
			name: "effective ids and supplementary groups",
			in:   hostFixture(t, "status-supplementary"),
			want: ProcStatus{Name: "redis-server", UID: 103, GID: 106, Groups: []int{4, 105, 1001}, VmRSS: 1843100 * 1024, VmSwap: 20480 * 1024,
				RealUID: 102, Threads: 5, VmData: -1, VmStk: -1},
		},
		{
			name: "kernel thread has no Vm lines",
			in:   "Name:\tkthreadd\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n",
			want: ProcStatus{Name: "kthreadd", UID: 0, GID: 0, VmRSS: -1, VmSwap: -1, RealUID: 0, VmData: -1, VmStk: -1},
		},
		{name: "no uid", in: "Name:\tx\nGid:\t0\t0\t0\t0\n", wantErr: true},
		{name: "short uid", in: "Uid:\t5\nGid:\t0\t0\t0\t0\n", wantErr: true},
		{name: "bad group", in: "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 x\n", wantErr: true},
		{name: "bad rss", in: "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmRSS:\t12 pages\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseProcStatus(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseProcStatus() error = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseProcStatus() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCgroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string // "", "v1" for ErrCgroupV1, or "any"
	}{
		{name: "v2 systemd unit", in: hostFixture(t, "cgroup-v2"), want: "/system.slice/redis-server.service"},
		{name: "v2 root", in: "0::/\n", want: "/"},
		{name: "hybrid with memory on v1", in: hostFixture(t, "cgroup-hybrid"), wantErr: "v1"},
		{name: "v1 only", in: hostFixture(t, "cgroup-v1"), wantErr: "v1"},
		{name: "hybrid without memory on v1", in: "1:name=systemd:/x\n0::/system.slice/a.service\n", want: "/system.slice/a.service"},
		{name: "garbage", in: "nonsense\n", wantErr: "any"},
		{name: "relative path", in: "0::x\n", wantErr: "any"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCgroup(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ParseCgroup() error = %v", err)
			case tt.wantErr == "any" && err == nil, tt.wantErr == "v1" && !errors.Is(err, ErrCgroupV1):
				t.Fatalf("ParseCgroup() error = %v, want %s", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseCgroup() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseCgroupMemoryMax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "unlimited", in: hostFixture(t, "memory.max-unlimited"), want: 0},
		{name: "1g", in: hostFixture(t, "memory.max-1g"), want: 1 << 30},
		{name: "garbage", in: "lots\n", wantErr: true},
		{name: "negative", in: "-1\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCgroupMemoryMax(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseCgroupMemoryMax(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCgroupMemoryCurrent(t *testing.T) {
	t.Parallel()
	got, err := ParseCgroupMemoryCurrent(hostFixture(t, "memory.current"))
	if err != nil || got != 734003200 {
		t.Errorf("ParseCgroupMemoryCurrent() = %d, %v; want 734003200", got, err)
	}
	if _, err := ParseCgroupMemoryCurrent("max\n"); err == nil {
		t.Error("ParseCgroupMemoryCurrent(max) succeeded, want an error")
	}
}

func TestParseCgroupMemoryEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    map[string]uint64
		wantErr bool
	}{
		{
			name: "fixture",
			in:   hostFixture(t, "memory.events"),
			want: map[string]uint64{"low": 0, "high": 0, "max": 12, "oom": 3, "oom_kill": 2, "oom_group_kill": 0},
		},
		{name: "empty", in: "", want: map[string]uint64{}},
		{name: "three fields", in: "oom_kill 1 2\n", wantErr: true},
		{name: "bad number", in: "oom_kill x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCgroupMemoryEvents(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseCgroupMemoryEvents() error = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseCgroupMemoryEvents() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTempFileName(t *testing.T) {
	t.Parallel()
	type result struct {
		Kind TempFileKind
		PID  int
		OK   bool
	}
	tests := []struct {
		name string
		want result
	}{
		{"temp-1234.rdb", result{TempBgsave, 1234, true}},
		{"temp-1.rdb", result{TempBgsave, 1, true}},
		{"temp-1700000000.4321.rdb", result{TempReplSync, 4321, true}},
		{"temp-rewriteaof-bg-77.aof", result{TempRewriteBg, 77, true}},
		{"temp-rewriteaof-78.aof", result{TempRewrite, 78, true}},
		{"temp-2147483647.rdb", result{TempBgsave, 2147483647, true}},

		{"temp-abc.rdb", result{}},
		{"temp-1.rdb.bak", result{}},
		{"dump.rdb", result{}},
		{"temp-12.rdb/", result{}},
		{"../temp-1.rdb", result{}},
		{"dir/temp-1.rdb", result{}},
		{"temp-.rdb", result{}},
		{"temp-0.rdb", result{}},
		{"temp-01.rdb", result{}},
		{"temp--1.rdb", result{}},
		{"temp-+1.rdb", result{}},
		{"temp- 1.rdb", result{}},
		{"temp-1 .rdb", result{}},
		{"temp-2147483648.rdb", result{}},
		{"temp-99999999999.rdb", result{}},
		{"temp-1.2.3.rdb", result{}},
		{"temp-.1.rdb", result{}},
		{"temp-1..rdb", result{}},
		{"temp-1.0.rdb", result{}},
		{"temp-1.RDB", result{}},
		{"TEMP-1.rdb", result{}},
		{"temp-1.aof", result{}},
		{"temp-rewriteaof-bg-.aof", result{}},
		{"temp-rewriteaof-bg-x.aof", result{}},
		{"temp-rewriteaof-1.rdb", result{}},
		{"temp-rewriteaof-bg-1.aof.tmp", result{}},
		{"temp-appendonly.aof.incr", result{}},
		{"temp-appendonly.aof.manifest", result{}},
		{"temp-1.rdb\x00", result{}},
		{"", result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got result
			got.Kind, got.PID, got.OK = ParseTempFileName(tt.name)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseTempFileName(%q) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestStatfsUsage(t *testing.T) {
	t.Parallel()
	// 100 blocks of 4 KiB, 30 free of which 10 reserved for root: df shows 70 used
	// of 90 usable, 77.8%.
	total, free, pct := statfsUsage(unix.Statfs_t{Bsize: 4096, Blocks: 100, Bfree: 30, Bavail: 20})
	if total != 100*4096 || free != 20*4096 || pct < 77.7 || pct > 77.8 {
		t.Errorf("statfsUsage = %d, %d, %.2f; want %d, %d, 77.78", total, free, pct, 100*4096, 20*4096)
	}
	if _, _, pct := statfsUsage(unix.Statfs_t{Bsize: 4096}); pct != 0 {
		t.Errorf("statfsUsage(empty fs) percent = %v, want 0", pct)
	}
}

func TestParseNprocLimit(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"Limit  Soft Limit  Hard Limit  Units\nMax processes             62987                62987                processes \n": 62987,
		"Max processes             unlimited            unlimited            processes \n":                                       0,
		"Max processes             1                    62987                processes \n":                                       1,
		"Max open files 1024 4096 files\n": -1,
		"Max processes x 1 processes\n":    -1,
	} {
		got, err := ParseNprocLimit(in)
		if got != want || (err != nil) != (want < 0) {
			t.Errorf("ParseNprocLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestParseCommit(t *testing.T) {
	t.Parallel()
	c, err := ParseCommit(hostFixture(t, "meminfo"))
	if err != nil || c.Limit != 12342044*1024 || c.Committed != 443520*1024 {
		t.Errorf("ParseCommit(meminfo) = %+v, %v", c, err)
	}
	if _, err := ParseCommit("MemTotal: 1 kB\n"); err == nil {
		t.Error("ParseCommit without the lines: no error")
	}
	if _, err := ParseCommit("CommitLimit: 1 pages\nCommitted_AS: 1 kB\n"); err == nil {
		t.Error("ParseCommit with a bad unit: no error")
	}
}
