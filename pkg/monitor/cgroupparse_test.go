package monitor

import (
	"strings"
	"testing"
)

func TestParseMemoryCgroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    MemoryCgroup
		wantErr bool
	}{
		{name: "v2 systemd unit", in: hostFixture(t, "cgroup-v2"), want: MemoryCgroup{Version: 2, Path: "/system.slice/redis-server.service"}},
		{name: "v2 root", in: "0::/\n", want: MemoryCgroup{Version: 2, Path: "/"}},
		// This machine's own: memory on v1 beside an empty unified hierarchy.
		{name: "hybrid with memory on v1", in: hostFixture(t, "cgroup-hybrid"), want: MemoryCgroup{Version: 1, Path: "/process_api/0be81f01546c2a6feca45f6287b05ee3"}},
		{name: "v1 only (RHEL 8)", in: hostFixture(t, "cgroup-v1"), want: MemoryCgroup{Version: 1, Path: "/system.slice/redis-server.service"}},
		{name: "v1 memory co-mounted", in: "5:cpuacct,memory:/a\n", want: MemoryCgroup{Version: 1, Path: "/a"}},
		{name: "hybrid without memory on v1", in: "1:name=systemd:/x\n0::/system.slice/a.service\n", want: MemoryCgroup{Version: 2, Path: "/system.slice/a.service"}},
		{name: "v1 without memory", in: "11:pids:/x\n", wantErr: true},
		{name: "garbage", in: "nonsense\n", wantErr: true},
		{name: "relative v2 path", in: "0::x\n", wantErr: true},
		{name: "relative v1 path", in: "4:memory:x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMemoryCgroup(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseMemoryCgroup() = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCgroupLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		version int
		want    uint64
		wantErr bool
	}{
		{name: "v1 64 MiB", in: hostFixture(t, "v1-memory.limit_in_bytes"), version: 1, want: 64 << 20},
		{name: "v1 unlimited (page counter max)", in: hostFixture(t, "v1-memory.limit_in_bytes-unlimited"), version: 1, want: 0},
		{name: "v1 LONG_MAX", in: "9223372036854775807\n", version: 1, want: 0},
		{name: "v1 just below 2^62 is a limit", in: "4611686018427387903\n", version: 1, want: 1<<62 - 1},
		{name: "v1 has no max", in: "max\n", version: 1, wantErr: true},
		{name: "v2 max", in: hostFixture(t, "memory.max-unlimited"), version: 2, want: 0},
		{name: "v2 1 GiB", in: hostFixture(t, "memory.max-1g"), version: 2, want: 1 << 30},
		// v2 has no "unlimited number": a huge value is a (useless) limit.
		{name: "v2 huge number", in: "9223372036854771712\n", version: 2, want: 9223372036854771712},
		{name: "negative", in: "-1\n", version: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCgroupLimit(strings.NewReader(tt.in), tt.version)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseCgroupLimit(%q, v%d) = %d, %v; want %d, error %v", tt.in, tt.version, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCgroupCounter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		fixture string
		want    uint64
	}{
		{"v1-memory.usage_in_bytes", 66281472},
		{"v1-memory.failcnt", 0},
		{"v1-memory.failcnt-oom", 113},
		{"memory.current", 734003200},
	} {
		got, err := ParseCgroupCounter(strings.NewReader(hostFixture(t, tt.fixture)), tt.fixture)
		if err != nil || got != tt.want {
			t.Errorf("ParseCgroupCounter(%s) = %d, %v; want %d", tt.fixture, got, err, tt.want)
		}
	}
	if _, err := ParseCgroupCounter(strings.NewReader("max\n"), "memory.current"); err == nil || !strings.Contains(err.Error(), "memory.current") {
		t.Errorf("ParseCgroupCounter(max) error = %v, want one naming the file", err)
	}
}

// TestParseCgroupKeyed reads the flat-keyed files of both versions, and the
// working set the kubelet's way from each version's memory.stat.
func TestParseCgroupKeyed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture string
		version int
		want    map[string]uint64 // the keys the reader uses
		usage   uint64
		ws      uint64
	}{
		{fixture: "v1-memory.oom_control", want: map[string]uint64{"oom_kill": 0, "under_oom": 0}},
		{fixture: "v1-memory.oom_control-oom", want: map[string]uint64{"oom_kill": 1}},
		{fixture: "memory.events", want: map[string]uint64{"oom_kill": 2, "max": 12}},
		{
			fixture: "v1-memory.stat", version: 1,
			want:  map[string]uint64{"total_inactive_file": 8388608, "hierarchical_memory_limit": 64 << 20, "total_rss": 57360384},
			usage: 66281472, ws: 66281472 - 8388608,
		},
		{
			fixture: "memory.stat", version: 2,
			want:  map[string]uint64{"inactive_file": 94371840, "anon": 616562688},
			usage: 734003200, ws: 734003200 - 94371840,
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCgroupKeyed(strings.NewReader(hostFixture(t, tt.fixture)), tt.fixture)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s %s = %d (present %v), want %d", tt.fixture, k, g, ok, v)
				}
			}
			if tt.version == 0 {
				return
			}
			ws, err := WorkingSet(tt.usage, got, tt.version)
			if err != nil || ws != tt.ws {
				t.Errorf("WorkingSet(v%d) = %d, %v; want %d", tt.version, ws, err, tt.ws)
			}
			// The other version's key is not there: a v1 stat read as v2 (or the
			// reverse) is an error, not a working set equal to the usage.
			if _, err := WorkingSet(tt.usage, got, 3-tt.version); tt.version == 2 && err == nil {
				t.Errorf("WorkingSet(v1) of a v2 memory.stat succeeded")
			}
		})
	}
}

func TestWorkingSetNeverNegative(t *testing.T) {
	t.Parallel()
	got, err := WorkingSet(100, map[string]uint64{"inactive_file": 150}, 2)
	if err != nil || got != 0 {
		t.Errorf("WorkingSet(100, inactive 150) = %d, %v; want 0", got, err)
	}
	if _, err := WorkingSet(100, map[string]uint64{}, 1); err == nil {
		t.Error("WorkingSet without total_inactive_file succeeded")
	}
}
