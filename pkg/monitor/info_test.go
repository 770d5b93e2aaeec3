package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// infoFixtures are the INFO replies in testdata (see testdata/README.md for which
// are captured and which derived).
var infoFixtures = []string{"info-7.0.15.txt", "info-6.2.txt", "info-7.4.txt", "info-valkey-8.0.txt"}

func infoFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return string(b)
}

// info7015 is what the real 7.0.15 capture holds, field by field.
func info7015() Info {
	return Info{
		Version:       "7.0.15",
		ServerName:    "redis",
		Mode:          "standalone",
		ProcessID:     2973,
		RunID:         "f09bfc6de16570e0812f04f90e0e2c6aa15ee15f",
		TCPPort:       0,
		UptimeSeconds: 1,
		Executable:    "/tmp/rfx/redis-server",
		ConfigFile:    "",

		UsedMemory:            942240,
		UsedMemoryRSS:         6455296,
		UsedMemoryPeak:        942240,
		MaxMemory:             0,
		MaxMemoryPolicy:       "noeviction",
		TotalSystemMemory:     25276510208,
		MemFragmentationRatio: 7.36,
		MemFragmentationBytes: 5578704,
		HasFragmentationBytes: true,

		HasMemoryBreakdown:    true,
		UsedMemoryOverhead:    876608,
		UsedMemoryStartup:     876224,
		UsedMemoryDataset:     65632,
		MemAOFBuffer:          112,
		UsedMemoryScripts:     200,
		UsedMemoryVMEval:      32768,
		MemNotCountedForEvict: 112,
		HasAllocatorFrag:      true,
		AllocatorAllocated:    1690848,
		AllocatorActive:       1826816,
		AllocatorResident:     4497408,
		AllocatorFragRatio:    1.08,
		AllocatorFragBytes:    135968,
		AllocatorRSSRatio:     2.46,
		AllocatorRSSBytes:     2670592,
		MemAllocator:          "jemalloc-5.3.0",

		RDBChangesSinceLastSave: 1,
		RDBLastSaveTime:         1795275517,
		RDBLastBgsaveStatus:     "ok",
		RDBLastBgsaveTimeSec:    -1,
		RDBCurrentBgsaveTimeSec: -1,
		RDBSaves:                0,
		HasRDBSaves:             true,
		AOFEnabled:              true,
		AOFLastBgrewriteStatus:  "ok",
		AOFLastWriteStatus:      "ok",
		AOFCurrentSize:          50,

		TotalCommandsProcessed: 1,

		Role: "master",

		HasErrorstats: true, // the section header is there, empty

		Keys: 1,
	}
}

func TestParseInfoFixtures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		want func() Info
	}{
		{"info-7.0.15.txt", info7015},
		{"info-6.2.txt", func() Info {
			in := info7015()
			in.Version = "6.2.14"
			in.RDBLastBgsaveStatus = "err"
			in.RDBChangesSinceLastSave = 1523
			in.HasRDBSaves = false // 7.0+
			in.ErrorstatOOM, in.ErrorstatMISCONF = 3, 17
			in.Keys, in.Expires = 1200+34, 30+4 // db0 + db1
			return in
		}},
		{"info-7.4.txt", func() Info {
			in := info7015()
			in.Version = "7.4.1"
			in.MemFragmentationRatio, in.MemFragmentationBytes = 1.45, 100<<20
			in.OutputBufferLimitDisconnections, in.HasOutputBufferDisconnections = 2, true
			return in
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			raw := infoFixture(t, tc.file)
			if !strings.Contains(raw, "\r\n") {
				t.Fatalf("%s lost its CRLF line endings", tc.file)
			}
			got := ParseInfo(raw)
			if diff := cmp.Diff(tc.want(), got); diff != "" {
				t.Errorf("ParseInfo(%s) mismatch (-want +got):\n%s", tc.file, diff)
			}
			// LF-only input (a file saved by an editor) parses the same.
			if diff := cmp.Diff(got, ParseInfo(strings.ReplaceAll(raw, "\r\n", "\n"))); diff != "" {
				t.Errorf("CRLF and LF parse differently (-crlf +lf):\n%s", diff)
			}
		})
	}
}

func TestParseInfoMissingFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want Info
	}{
		{name: "empty", in: "", want: Info{ServerName: "redis"}},
		{name: "blank lines", in: "\r\n\r\n\n", want: Info{ServerName: "redis"}},
		{
			name: "6.0 persistence without 6.2/7.0 fields",
			in: "# Server\r\nredis_version:6.0.16\r\n\r\n# Persistence\r\nloading:0\r\nrdb_last_bgsave_status:ok\r\n" +
				"aof_enabled:0\r\n\r\n# Keyspace\r\n",
			want: Info{Version: "6.0.16", ServerName: "redis", RDBLastBgsaveStatus: "ok"},
		},
		{
			name: "zero is not absent",
			in:   "rdb_saves:0\r\nclient_output_buffer_limit_disconnections:0\r\nmem_fragmentation_bytes:0\r\n# Errorstats\r\n",
			want: Info{ServerName: "redis", HasRDBSaves: true, HasOutputBufferDisconnections: true, HasFragmentationBytes: true, HasErrorstats: true},
		},
		{
			name: "malformed numbers stay zero",
			in:   "used_memory:lots\r\nprocess_id:\r\nmem_fragmentation_ratio:n/a\r\nrdb_last_save_time:12x\r\n",
			want: Info{ServerName: "redis"},
		},
		{
			name: "old field names (2.x)",
			in:   "changes_since_last_save:7\r\nbgsave_in_progress:1\r\nlast_save_time:1700000000\r\n",
			want: Info{ServerName: "redis", RDBChangesSinceLastSave: 7, RDBBgsaveInProgress: true, RDBLastSaveTime: 1700000000},
		},
		{
			name: "unknown fields and sections are ignored",
			in:   "# Shiny\r\nnew_field:1\r\nused_memory:10\r\nno colon here\r\n:\r\n",
			want: Info{ServerName: "redis", UsedMemory: 10},
		},
		{
			name: "replica",
			in:   "# Replication\r\nrole:slave\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:-1\r\nconnected_slaves:0\r\n",
			want: Info{ServerName: "redis", Role: "slave", MasterLinkStatus: "down", MasterLinkDownSinceSeconds: -1},
		},
		{
			name: "fork children",
			in:   "rdb_bgsave_in_progress:1\r\naof_rewrite_in_progress:1\r\naof_rewrite_scheduled:1\r\nmodule_fork_in_progress:1\r\nloading:1\r\nasync_loading:1\r\n",
			want: Info{ServerName: "redis", RDBBgsaveInProgress: true, AOFRewriteInProgress: true, AOFRewriteScheduled: true, ModuleForkInProgress: true, Loading: true, AsyncLoading: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, ParseInfo(tc.in)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseInfoServerName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in          string
		wantName, wantVer string
	}{
		{"redis", "redis_version:7.2.4\r\n", "redis", "7.2.4"},
		{"valkey, usual order", "redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n", "valkey", "8.0.1"},
		{"valkey, version first", "valkey_version:8.0.1\r\nredis_version:7.2.4\r\nserver_name:valkey\r\n", "valkey", "8.0.1"},
		{"valkey without valkey_version", "server_name:valkey\r\nredis_version:7.2.4\r\n", "valkey", "7.2.4"},
		{"valkey 7.2 (redis_version only)", "redis_version:7.2.5\r\n", "redis", "7.2.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := ParseInfo(tc.in)
			if in.ServerName != tc.wantName || in.Version != tc.wantVer {
				t.Errorf("ServerName, Version = %q, %q; want %q, %q", in.ServerName, in.Version, tc.wantName, tc.wantVer)
			}
		})
	}
}

func TestParseInfoKeyspaceAndErrorstats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		in            string
		keys, expires int64
		oom, misconf  int64
		hasErrorstats bool
	}{
		{
			name: "two databases",
			in:   "# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=100\r\ndb1:keys=5,expires=5,avg_ttl=0\r\n",
			keys: 15, expires: 7,
		},
		{
			name: "7.4 subexpiry and unknown keyspace fields",
			in:   "# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0,subexpiry=2\r\ndb15:avg_ttl=0,keys=4,expires=0\r\n",
			keys: 7, expires: 1,
		},
		{
			name: "keyspace lines without a section header (INFO keyspace piece)",
			in:   "db0:keys=2,expires=1,avg_ttl=0\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n",
			keys: 3, expires: 1,
		},
		{
			name: "errorstats",
			in:   "# Errorstats\r\nerrorstat_ERR:count=9\r\nerrorstat_MISCONF:count=17\r\nerrorstat_OOM:count=3\r\nerrorstat_WRONGTYPE:count=1\r\n",
			oom:  3, misconf: 17, hasErrorstats: true,
		},
		{
			name: "errorstat with extra fields",
			in:   "# Errorstats\r\nerrorstat_OOM:count=42,extra=1\r\nerrorstat_MISCONF:bogus\r\n",
			oom:  42, hasErrorstats: true,
		},
		{
			name: "no errorstats section (6.0)",
			in:   "# Stats\r\ntotal_commands_processed:5\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := ParseInfo(tc.in)
			got := [5]any{in.Keys, in.Expires, in.ErrorstatOOM, in.ErrorstatMISCONF, in.HasErrorstats}
			want := [5]any{tc.keys, tc.expires, tc.oom, tc.misconf, tc.hasErrorstats}
			if got != want {
				t.Errorf("keys, expires, OOM, MISCONF, has errorstats = %v, want %v", got, want)
			}
		})
	}
}

func TestInfoForkChildRunning(t *testing.T) {
	t.Parallel()
	for _, in := range []Info{{RDBBgsaveInProgress: true}, {AOFRewriteInProgress: true}, {ModuleForkInProgress: true}} {
		if !in.ForkChildRunning() {
			t.Errorf("ForkChildRunning(%+v) = false", in)
		}
	}
	if (&Info{AOFRewriteScheduled: true, Loading: true}).ForkChildRunning() {
		t.Error("a scheduled rewrite or loading is not a fork child")
	}
}

// FuzzParseInfo checks that no input makes ParseInfo panic, that it is
// deterministic, and that CRLF line endings (what Redis sends) read as LF ones
// (what a captured file or a test may hold).
func FuzzParseInfo(f *testing.F) {
	for _, name := range infoFixtures {
		f.Add(infoFixture(f, name))
	}
	f.Add("# Keyspace\r\ndb0:keys=,expires=\r\n")
	f.Add("errorstat_OOM:count=\r\n#\r\n:\r\n\r")
	f.Fuzz(func(t *testing.T, s string) {
		a, b := ParseInfo(s), ParseInfo(s)
		if diff := cmp.Diff(a, b, cmpopts.EquateNaNs()); diff != "" {
			t.Errorf("ParseInfo is not deterministic:\n%s", diff)
		}
		if strings.Contains(s, "\r") {
			return
		}
		if diff := cmp.Diff(a, ParseInfo(strings.ReplaceAll(s, "\n", "\r\n")), cmpopts.EquateNaNs()); diff != "" {
			t.Errorf("CRLF line endings change the result (-LF +CRLF):\n%s", diff)
		}
	})
}

func TestParseConfigReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kv   []string
		want RedisConfig
	}{
		{name: "nil", kv: nil, want: RedisConfig{}},
		{
			name: "pairs",
			kv:   []string{"dir", "/var/lib/redis", "save", "3600 1 300 100 60 10000", "stop-writes-on-bgsave-error", "yes"},
			want: RedisConfig{"dir": "/var/lib/redis", "save": "3600 1 300 100 60 10000", "stop-writes-on-bgsave-error": "yes"},
		},
		{name: "names are lowercased", kv: []string{"MaxMemory", "0"}, want: RedisConfig{"maxmemory": "0"}},
		{name: "empty value kept", kv: []string{"save", ""}, want: RedisConfig{"save": ""}},
		{name: "trailing unpaired element ignored", kv: []string{"appendonly", "no", "dangling"}, want: RedisConfig{"appendonly": "no"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, ParseConfigReply(tc.kv)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedisConfigHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                            string
		c                               RedisConfig
		known, savePoints, stopW, aofOn bool
		minSize                         int64
	}{
		{name: "unknown (nil)", c: nil, stopW: true, minSize: -1},
		{name: "unknown (empty)", c: RedisConfig{}, stopW: true, minSize: -1},
		{
			name:  "redis defaults",
			c:     RedisConfig{"save": "3600 1 300 100 60 10000", "stop-writes-on-bgsave-error": "yes", "appendonly": "no", "auto-aof-rewrite-min-size": "67108864"},
			known: true, savePoints: true, stopW: true, minSize: 64 << 20,
		},
		{
			name:  "save disabled, stop-writes off, AOF on",
			c:     RedisConfig{"save": "", "stop-writes-on-bgsave-error": "no", "appendonly": "yes"},
			known: true, aofOn: true, minSize: -1,
		},
		{name: "blank save", c: RedisConfig{"save": "  "}, known: true, stopW: true, minSize: -1},
		{name: "stop-writes absent reads as yes", c: RedisConfig{"dir": "/d"}, known: true, stopW: true, minSize: -1},
		{name: "non-numeric size", c: RedisConfig{"auto-aof-rewrite-min-size": "64mb"}, known: true, stopW: true, minSize: -1},
		{name: "padded size", c: RedisConfig{"auto-aof-rewrite-min-size": " 1024 "}, known: true, stopW: true, minSize: 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.c
			got := [5]any{c.Known(), c.SavePointsSet(), c.StopWritesOnBgsaveError(), c.AppendOnly(), c.Int("auto-aof-rewrite-min-size", -1)}
			want := [5]any{tc.known, tc.savePoints, tc.stopW, tc.aofOn, tc.minSize}
			if got != want {
				t.Errorf("Known, SavePointsSet, StopWritesOnBgsaveError, AppendOnly, Int = %v, want %v", got, want)
			}
		})
	}
	c := RedisConfig{"dir": "/var/lib/redis", "logfile": ""}
	if v, ok := c.Get("dir"); !ok || v != "/var/lib/redis" {
		t.Errorf("Get(dir) = %q, %v", v, ok)
	}
	if v, ok := c.Get("logfile"); !ok || v != "" {
		t.Errorf("Get(logfile) = %q, %v; an empty value is still reported", v, ok)
	}
	if _, ok := c.Get("appenddirname"); ok {
		t.Error("Get of an absent parameter reports ok")
	}
}

func TestRedactAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:6379", "127.0.0.1:6379"},
		{"/run/redis/redis-server.sock", "/run/redis/redis-server.sock"},
		{"redis://10.0.0.1:6379/0", "redis://10.0.0.1:6379/0"},
		{"redis://user:s3cret@10.0.0.1:6379/0", "redis://user:xxxxx@10.0.0.1:6379/0"},
		{"redis://:s3cret@10.0.0.1:6379", "redis://:xxxxx@10.0.0.1:6379"},
		{"rediss://guardian:s3cret@redis.example:6380", "rediss://guardian:xxxxx@redis.example:6380"},
		{"unix://user:s3cret@/run/redis.sock?db=1", "unix://user:xxxxx@/run/redis.sock?db=1"},
		{"redis://user:p@ss:w0rd@host:6379", "redis://user:xxxxx@host:6379"}, // unescaped @ in the password
		{"redis://user@host:6379", "redis://user@host:6379"},                 // a user alone is no secret
	} {
		got := RedactAddr(tc.in)
		if got != tc.want {
			t.Errorf("RedactAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"s3cret", "w0rd"} {
			if strings.Contains(got, secret) {
				t.Errorf("RedactAddr(%q) = %q leaks the password", tc.in, got)
			}
		}
	}
}

func TestIsLocalAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:6379", true},
		{"127.0.1.1:6379", true},
		{"localhost:6379", true},
		{"[::1]:6379", true},
		{"/run/redis/redis-server.sock", true},
		{"unix:///run/redis/redis-server.sock", true},
		{"redis://localhost:6379/0", true},
		{"redis://user:pw@127.0.0.1:6379", true},
		{"rediss://127.0.0.1:6380", true},
		{"10.0.0.5:6379", false},
		{"redis.example:6379", false},
		{"redis://10.0.0.5:6379", false},
		{"[2001:db8::1]:6379", false},
		{"", false},
		{"localhost", false},     // no port: not an address at all
		{"redis://%zz:1", false}, // unparsable URL
	} {
		if got := IsLocalAddr(tc.addr); got != tc.want {
			t.Errorf("IsLocalAddr(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// replyError stands for an error reply from the server, as go-redis returns it
// (it implements redis.Error).
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

func TestClassifyError(t *testing.T) {
	t.Parallel()
	opErr := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6379}, Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name string
		err  error
		want ErrKind
	}{
		{"nil", nil, ErrNone},
		{"WRONGPASS", errors.New("WRONGPASS invalid username-password pair or user is disabled."), ErrAuth},
		{"WRONGPASS reply", replyError("WRONGPASS invalid username-password pair or user is disabled."), ErrAuth},
		{"NOAUTH", replyError("NOAUTH Authentication required."), ErrAuth},
		{"AUTH without a password configured", replyError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"), ErrAuth},
		{"unreadable password_file", fmt.Errorf("read password_file: %w", os.ErrPermission), ErrAuth},
		{"NOPERM", errors.New("NOPERM User guardian has no permissions to run the 'config|get' command"), ErrCommandUnavailable},
		{"NOPERM wrapped", fmt.Errorf("config get: %w", replyError("NOPERM this user has no permissions to run the 'info' command")), ErrCommandUnavailable},
		{"renamed CONFIG", errors.New("ERR unknown command 'CONFIG', with args beginning with: 'GET' 'dir' "), ErrCommandUnavailable},
		{"unknown subcommand", replyError("ERR unknown subcommand 'GET'. Try CONFIG HELP."), ErrCommandUnavailable},
		{"connection refused", opErr, ErrUnreachable},
		{"wrapped connection refused", fmt.Errorf("read info: %w", opErr), ErrUnreachable},
		{"timeout", context.DeadlineExceeded, ErrUnreachable},
		{"eof", errors.New("EOF"), ErrUnreachable},
		{"other server error", replyError("LOADING Redis is loading the dataset in memory"), ErrOther},
		{"wrapped other server error", fmt.Errorf("info: %w", replyError("BUSY Redis is busy running a script")), ErrOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ClassifyError(tc.err); got != tc.want {
				t.Errorf("ClassifyError(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestInfoMerge: a light tick's sections replace theirs and leave the others as
// the last full read had them; summed sections start again from zero.
func TestInfoMerge(t *testing.T) {
	t.Parallel()
	full := "# Server\r\nredis_version:7.0.15\r\nrun_id:abc\r\nprocess_id:42\r\n" +
		"# Memory\r\nused_memory:1000\r\n" +
		"# Persistence\r\nrdb_changes_since_last_save:5\r\nrdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:ok\r\n" +
		"# Stats\r\ntotal_commands_processed:100\r\n" +
		"# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=x,port=1,state=online,offset=1,lag=0\r\n" +
		"# Errorstats\r\nerrorstat_MISCONF:count=3\r\n" +
		"# Keyspace\r\ndb0:keys=10,expires=1,avg_ttl=0\r\n"
	in := ParseInfo(full)
	in.Merge("# Persistence\r\nrdb_changes_since_last_save:9\r\nrdb_bgsave_in_progress:1\r\nrdb_last_bgsave_status:err\r\n" +
		"# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=x,port=1,state=wait_bgsave,offset=1,lag=0\r\n")
	want := ParseInfo(full)
	want.RDBChangesSinceLastSave, want.RDBBgsaveInProgress, want.RDBLastBgsaveStatus = 9, true, "err"
	want.ReplicasOnline = 0
	if in != want {
		t.Errorf("merged\n%+v\nwant\n%+v", in, want)
	}
	if in.Replicas != 1 || in.Keys != 10 || in.ErrorstatMISCONF != 3 || in.UsedMemory != 1000 || in.RunID != "abc" {
		t.Errorf("merged %+v: want replicas 1 (not summed twice), keys 10, MISCONF 3, memory and run_id kept", in)
	}
}
