package remediate

import (
	"context"
	"errors"
	"fmt"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// fakeRedis answers commands from a function and records them.
type fakeRedis struct {
	mu    sync.Mutex
	calls [][]string
	reply func(args []string) (any, error)
}

var _ Doer = (*fakeRedis)(nil)

func (f *fakeRedis) Do(ctx context.Context, args ...any) *redis.Cmd {
	strs := make([]string, len(args))
	for i, a := range args {
		strs[i] = fmt.Sprint(a)
	}
	f.mu.Lock()
	f.calls = append(f.calls, strs)
	f.mu.Unlock()
	cmd := redis.NewCmd(ctx, args...)
	v, err := f.reply(strs)
	if err != nil {
		cmd.SetErr(err)
	} else {
		cmd.SetVal(v)
	}
	return cmd
}

func (f *fakeRedis) Calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.calls...)
}

// configServer is a fake Redis with a live configuration.
type configServer struct {
	fakeRedis
	config map[string]string
	// onSet runs before a CONFIG SET is applied; a non-nil error fails it.
	onSet func(setting, value string) error
	info  string
}

func newConfigServer(cfg map[string]string) *configServer {
	s := &configServer{config: cfg, info: "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_bgsave_in_progress:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n"}
	s.reply = func(args []string) (any, error) {
		switch {
		case len(args) == 3 && args[1] == "GET":
			v, ok := s.config[args[2]]
			if !ok {
				return []any{}, nil
			}
			return []any{args[2], v}, nil
		case len(args) == 4 && args[1] == "SET":
			if s.onSet != nil {
				if err := s.onSet(args[2], args[3]); err != nil {
					return nil, err
				}
			}
			s.config[args[2]] = args[3]
			return "OK", nil
		case args[0] == "INFO":
			return s.info, nil
		}
		return nil, fmt.Errorf("ERR unknown command '%s'", args[0])
	}
	return s
}

func newExecutor(t *testing.T, c Doer, l Ledger) (*Executor, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	return &Executor{
		Instance: "main", Addr: "127.0.0.1:6379", Client: c, ConfigCommand: "CONFIG", Ledger: l,
		Log: zap.New(core), ProcRoot: t.TempDir(), Now: func() time.Time { return when },
	}, logs
}

func countEvents(logs *observer.ObservedLogs, event events.Name) int {
	return logs.FilterField(events.Field(event)).Len()
}

var setStopWrites = policy.Decision{Remedy: policy.RemedyStopWrites, Action: policy.ActSet, Setting: policy.SettingStopWrites,
	Value: "no", Reason: policy.IDMisconfRDB, Detail: "the last RDB save failed"}

var undoStopWrites = policy.Decision{Remedy: policy.RemedyStopWrites, Action: policy.ActUndo, Setting: policy.SettingStopWrites,
	Value: "yes", Reason: policy.IDMisconfRDB, Detail: "a save succeeded"}

// eachUrgency runs f with setStopWrites as a plain and as an urgent decision.
func eachUrgency(t *testing.T, f func(t *testing.T, d policy.Decision)) {
	t.Parallel()
	for _, urgent := range []bool{false, true} {
		t.Run(fmt.Sprintf("urgent=%v", urgent), func(t *testing.T) {
			t.Parallel()
			d := setStopWrites
			d.Urgent = urgent
			f(t, d)
		})
	}
}

// TestExecuteSetRecordsBeforeApplying: the ledger entry is in the file when CONFIG
// SET runs. An urgent set (writes are rejected now) is applied before the fsync,
// but after the rename: every reader finds the entry all the same.
func TestExecuteSetRecordsBeforeApplying(t *testing.T) {
	eachUrgency(t, func(t *testing.T, d policy.Decision) {
		dir := t.TempDir()
		l := openLedger(t, dir)
		srv := newConfigServer(map[string]string{policy.SettingStopWrites: "yes"})
		want := Change{Instance: "main", Addr: "127.0.0.1:6379", Setting: policy.SettingStopWrites, Original: "yes", Value: "no",
			Remedy: policy.RemedyStopWrites, Reason: policy.IDMisconfRDB, Time: when}
		sawEntry := false
		srv.onSet = func(setting, value string) error {
			// The change must be in the ledger file before Redis sees it.
			reopened := &FileLedger{path: LedgerPath(dir, "main"), changes: map[string]Change{}}
			if err := reopened.load(); err != nil {
				return err
			}
			got, ok := reopened.Get(setting)
			sawEntry = ok && got == want
			return nil
		}
		e, logs := newExecutor(t, srv, l)
		out := e.Execute(context.Background(), d)
		if !out.OK {
			t.Fatalf("outcome %+v", out)
		}
		if !sawEntry {
			t.Error("the ledger entry was not on disk when CONFIG SET ran")
		}
		wantCalls := [][]string{{"CONFIG", "GET", policy.SettingStopWrites}, {"INFO", "server"}, {"CONFIG", "SET", policy.SettingStopWrites, "no"}}
		if diff := cmp.Diff(wantCalls, srv.Calls()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		applied := want
		applied.Applied = true // marked once the SET succeeded
		if diff := cmp.Diff([]Change{applied}, l.All()); diff != "" {
			t.Errorf("ledger (-want +got):\n%s", diff)
		}
		if n := countEvents(logs, events.RemedyApplied); n != 1 {
			t.Errorf("%d remedy_applied events, want 1", n)
		}
		if held := e.Held(); held[policy.SettingStopWrites].Original != "yes" || held[policy.SettingStopWrites].Since != when {
			t.Errorf("Held() = %+v", held)
		}
	})
}

func TestExecuteSetRenamedConfig(t *testing.T) {
	t.Parallel()
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "yes"})
	e, _ := newExecutor(t, srv, NewMemLedger())
	e.ConfigCommand = "CONFIG_7f3a"
	if out := e.Execute(context.Background(), setStopWrites); !out.OK {
		t.Fatalf("outcome %+v", out)
	}
	for _, c := range srv.Calls() {
		if c[0] != "CONFIG_7f3a" && c[0] != "INFO" {
			t.Errorf("call %v does not use the renamed command", c)
		}
	}
}

func TestExecuteSetAlreadySet(t *testing.T) {
	t.Parallel()
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "no"})
	l := NewMemLedger()
	e, _ := newExecutor(t, srv, l)
	if out := e.Execute(context.Background(), setStopWrites); !out.OK {
		t.Fatalf("outcome %+v", out)
	}
	if len(srv.Calls()) != 1 || len(l.All()) != 0 {
		t.Errorf("calls %v, ledger %+v; want one GET and nothing held", srv.Calls(), l.All())
	}
}

func TestExecuteSetFailureRemovesEntry(t *testing.T) {
	eachUrgency(t, func(t *testing.T, d policy.Decision) {
		dir := t.TempDir()
		l := openLedger(t, dir)
		srv := newConfigServer(map[string]string{policy.SettingStopWrites: "yes"})
		srv.onSet = func(string, string) error {
			return errors.New("NOPERM User guardian has no permissions to run the 'config|set' command")
		}
		e, logs := newExecutor(t, srv, l)
		out := e.Execute(context.Background(), d)
		if out.OK || !strings.Contains(out.Err, "NOPERM") {
			t.Errorf("outcome %+v, want a failure naming NOPERM", out)
		}
		if len(l.All()) != 0 {
			t.Errorf("ledger holds %+v after a failed SET", l.All())
		}
		checkFile(t, l.Path(), nil)
		if n := countEvents(logs, events.RemedyFailed); n != 1 {
			t.Errorf("%d remedy_failed events, want 1", n)
		}
	})
}

func TestExecuteSetGetFails(t *testing.T) {
	t.Parallel()
	srv := &fakeRedis{reply: func([]string) (any, error) { return nil, errors.New("ERR unknown command 'CONFIG'") }}
	l := NewMemLedger()
	e, _ := newExecutor(t, srv, l)
	out := e.Execute(context.Background(), setStopWrites)
	if out.OK || out.Err == "" {
		t.Errorf("outcome %+v, want a failure", out)
	}
	if len(srv.Calls()) != 1 || len(l.All()) != 0 {
		t.Errorf("calls %v, ledger %+v; want only the GET", srv.Calls(), l.All())
	}
}

func TestExecuteUndo(t *testing.T) {
	t.Parallel()
	held := change(policy.SettingStopWrites, "yes", "no")
	held.Remedy = policy.RemedyStopWrites
	for _, tc := range []struct {
		name      string
		live      string
		wantCalls [][]string
		wantLive  string
		event     events.Name
	}{
		{name: "still ours", live: "no", wantLive: "yes", event: events.RemedyUndone, wantCalls: [][]string{
			{"CONFIG", "GET", policy.SettingStopWrites}, {"CONFIG", "SET", policy.SettingStopWrites, "yes"}}},
		{name: "changed by someone else", live: "maybe", wantLive: "maybe", event: events.RemedyYielded, wantCalls: [][]string{
			{"CONFIG", "GET", policy.SettingStopWrites}}},
		{name: "back at the original", live: "yes", wantLive: "yes", event: events.RemedyYielded, wantCalls: [][]string{
			{"CONFIG", "GET", policy.SettingStopWrites}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := openLedger(t, t.TempDir())
			if err := l.Record(held); err != nil {
				t.Fatal(err)
			}
			srv := newConfigServer(map[string]string{policy.SettingStopWrites: tc.live})
			e, logs := newExecutor(t, srv, l)
			if out := e.Execute(context.Background(), undoStopWrites); !out.OK {
				t.Fatalf("outcome %+v", out)
			}
			if diff := cmp.Diff(tc.wantCalls, srv.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if got := srv.config[policy.SettingStopWrites]; got != tc.wantLive {
				t.Errorf("live value %q, want %q", got, tc.wantLive)
			}
			if len(l.All()) != 0 {
				t.Errorf("ledger still holds %+v", l.All())
			}
			if n := countEvents(logs, tc.event); n != 1 {
				t.Errorf("%d %s events, want 1; logs: %+v", n, tc.event, logs.All())
			}
		})
	}
}

func TestExecuteUndoNothingHeld(t *testing.T) {
	t.Parallel()
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "no"})
	e, _ := newExecutor(t, srv, NewMemLedger())
	if out := e.Execute(context.Background(), undoStopWrites); !out.OK {
		t.Fatalf("outcome %+v", out)
	}
	if len(srv.Calls()) != 0 {
		t.Errorf("calls %v, want none", srv.Calls())
	}
}

func TestExecuteDryRun(t *testing.T) {
	t.Parallel()
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "yes"})
	l := NewMemLedger()
	e, logs := newExecutor(t, srv, l)
	e.DryRun = true
	dir := t.TempDir()
	temp := filepath.Join(dir, "temp-"+strconv.Itoa(deadPID(t))+".rdb")
	if err := os.WriteFile(temp, []byte("REDIS0011"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []policy.Decision{
		setStopWrites,
		undoStopWrites,
		{Remedy: policy.RemedyBgsaveRetry, Action: policy.ActBgsave},
		{Remedy: policy.RemedyRewriteDeferral, Action: policy.ActBgrewriteaof},
		{Remedy: policy.RemedyTempCleanup, Action: policy.ActDeleteTemp, Path: temp},
	} {
		if out := e.Execute(context.Background(), d); !out.OK {
			t.Errorf("%s: outcome %+v", d.Action, out)
		}
		if d.Action == policy.ActSet {
			if _, ok := l.Get(d.Setting); !ok {
				t.Error("dry-run set is not held in the memory ledger")
			}
		}
	}
	for _, c := range srv.Calls() {
		if c[0] != "INFO" && (len(c) < 2 || c[1] != "GET") {
			t.Errorf("dry run sent %v", c)
		}
	}
	if got := srv.config[policy.SettingStopWrites]; got != "yes" {
		t.Errorf("dry run changed the live value to %q", got)
	}
	if len(l.All()) != 0 {
		t.Errorf("ledger after dry-run undo: %+v", l.All())
	}
	if _, err := os.Stat(temp); err != nil {
		t.Errorf("dry run deleted the temp file: %v", err)
	}
	for _, ent := range logs.All() {
		if ent.ContextMap()["dry_run"] != true {
			t.Errorf("log %q lacks dry_run", ent.Message)
		}
	}
}

// deadPID finds a pid with no process, scanning down from the top of the pid range.
func deadPID(t *testing.T) int {
	t.Helper()
	top := 4194304
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			top = n
		}
	}
	for pid := top - 1; pid > 1000; pid-- {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); errors.Is(err, os.ErrNotExist) {
			return pid
		}
	}
	t.Fatal("no free pid found")
	return 0
}

func TestExecuteDeleteTemp(t *testing.T) {
	t.Parallel()
	const busy = "# Persistence\r\nloading:0\r\nrdb_bgsave_in_progress:1\r\naof_rewrite_in_progress:0\r\n"
	const loading = "# Persistence\r\nloading:1\r\nrdb_bgsave_in_progress:0\r\n"
	const rewriting = "# Persistence\r\nloading:0\r\nrdb_bgsave_in_progress:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:1\r\n"
	for _, tc := range []struct {
		name string
		// make creates what is to be deleted in dir and returns its path.
		make    func(t *testing.T, dir string, pid int) string
		info    string
		alive   bool // a process with the pid exists under ProcRoot
		realPID bool // use the real /proc
		minAge  time.Duration
		deleted bool
		ok      bool
	}{
		{name: "stale", make: regular("temp-%d.rdb"), deleted: true, ok: true},
		{name: "stale, real /proc", make: regular("temp-%d.rdb"), realPID: true, deleted: true, ok: true},
		{name: "stale rewrite", make: regular("temp-rewriteaof-bg-%d.aof"), deleted: true, ok: true},
		{name: "stale AOF incr", make: regular("temp-appendonly.aof.incr"), deleted: true, ok: true},
		{name: "stale AOF manifest", make: regular("temp-appendonly.aof.manifest"), deleted: true, ok: true},
		{name: "AOF temp while a rewrite is scheduled", make: regular("temp-appendonly.aof.incr"), info: rewriting},
		{name: "not a temp name", make: regular("dump.rdb")},
		{name: "temp-like name", make: regular("temp-%d.rdb.bak")},
		{name: "symlink", make: func(t *testing.T, dir string, pid int) string {
			target := regular("dump.rdb")(t, dir, pid)
			link := filepath.Join(dir, fmt.Sprintf("temp-%d.rdb", pid))
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}},
		{name: "directory", make: func(t *testing.T, dir string, pid int) string {
			p := filepath.Join(dir, fmt.Sprintf("temp-%d.rdb", pid))
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "bgsave in progress", make: regular("temp-%d.rdb"), info: busy},
		{name: "loading", make: regular("temp-%d.rdb"), info: loading},
		{name: "pid alive", make: regular("temp-%d.rdb"), alive: true},
		// The decision's minimum age is checked again: a file made after the scan
		// (same name, a new child's) is younger than the decision allows.
		{name: "younger than the decision's min age", make: regular("temp-%d.rdb"), minAge: time.Hour},
		{name: "already gone", make: func(_ *testing.T, dir string, pid int) string {
			return filepath.Join(dir, fmt.Sprintf("temp-%d.rdb", pid))
		}, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newConfigServer(nil)
			if tc.info != "" {
				srv.info = tc.info
			}
			e, logs := newExecutor(t, srv, NewMemLedger())
			pid := 424242
			if tc.realPID {
				e.ProcRoot = ""
				pid = deadPID(t)
			}
			if tc.alive {
				if err := os.Mkdir(filepath.Join(e.ProcRoot, strconv.Itoa(pid)), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			path := tc.make(t, dir, pid)
			before, _ := os.ReadDir(dir)
			out := e.Execute(context.Background(), policy.Decision{Remedy: policy.RemedyTempCleanup, Action: policy.ActDeleteTemp, Path: path, MinAge: tc.minAge})
			if out.OK != tc.ok {
				t.Errorf("outcome %+v, want OK %v", out, tc.ok)
			}
			_, err := os.Lstat(path)
			if gone := errors.Is(err, os.ErrNotExist); tc.deleted != gone && tc.name != "already gone" {
				t.Errorf("deleted %v, want %v", gone, tc.deleted)
			}
			after, _ := os.ReadDir(dir)
			if !tc.deleted && len(after) != len(before) {
				t.Errorf("dir had %d entries, now %d", len(before), len(after))
			}
			if tc.deleted && countEvents(logs, events.RemedyApplied) != 1 {
				t.Errorf("no remedy_applied event for the deletion: %+v", logs.All())
			}
		})
	}
}

// regular makes a regular file named after a pattern with the pid.
func regular(pattern string) func(t *testing.T, dir string, pid int) string {
	return func(t *testing.T, dir string, pid int) string {
		t.Helper()
		name := pattern
		if strings.Contains(pattern, "%d") {
			name = fmt.Sprintf(pattern, pid)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("REDIS0011"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func TestExecuteBgsave(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		schedule bool
		err      error
		ok       bool
		want     []string
	}{
		{name: "started", ok: true, want: []string{"BGSAVE"}},
		{name: "scheduled", schedule: true, ok: true, want: []string{"BGSAVE", "SCHEDULE"}},
		{name: "fork failed", err: errors.New("ERR"), ok: true, want: []string{"BGSAVE"}},
		{name: "already running", err: errors.New("ERR Background save already in progress"), ok: true, want: []string{"BGSAVE"}},
		{name: "denied", err: errors.New("NOPERM this user has no permissions to run the 'bgsave' command"), want: []string{"BGSAVE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &fakeRedis{reply: func([]string) (any, error) {
				if tc.err != nil {
					return nil, tc.err
				}
				return "Background saving started", nil
			}}
			e, _ := newExecutor(t, srv, NewMemLedger())
			out := e.Execute(context.Background(), policy.Decision{Remedy: policy.RemedyBgsaveRetry, Action: policy.ActBgsave, Schedule: tc.schedule})
			if out.OK != tc.ok {
				t.Errorf("outcome %+v, want OK %v", out, tc.ok)
			}
			if diff := cmp.Diff([][]string{tc.want}, srv.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecuteWarnAndUnknown(t *testing.T) {
	t.Parallel()
	srv := &fakeRedis{reply: func([]string) (any, error) { return nil, errors.New("unexpected") }}
	e, logs := newExecutor(t, srv, NewMemLedger())
	if out := e.Execute(context.Background(), policy.Decision{Remedy: policy.RemedyStopWrites, Action: policy.ActWarn, Detail: "still held"}); !out.OK {
		t.Errorf("warn outcome %+v", out)
	}
	if n := countEvents(logs, events.RemedyHeld); n != 1 {
		t.Errorf("%d remedy_held events, want 1", n)
	}
	if out := e.Execute(context.Background(), policy.Decision{Action: "explode"}); out.OK {
		t.Errorf("unknown action succeeded: %+v", out)
	}
	if len(srv.Calls()) != 0 {
		t.Errorf("calls %v, want none", srv.Calls())
	}
}

func TestReconcileAndRestoreAll(t *testing.T) {
	t.Parallel()
	l := NewMemLedger()
	sw := change(policy.SettingStopWrites, "yes", "no")
	rw := change(policy.SettingRewritePercent, "100", "0")
	for _, c := range []Change{sw, rw} {
		if err := l.Record(c); err != nil {
			t.Fatal(err)
		}
	}
	srv := newConfigServer(map[string]string{policy.SettingStopWrites: "no", policy.SettingRewritePercent: "50"})
	e, logs := newExecutor(t, srv, l)
	e.Reconcile(monitor.RedisReading{Config: monitor.RedisConfig{policy.SettingStopWrites: "no", policy.SettingRewritePercent: "50"}}, true)
	seen := sw
	seen.Applied = true // live as the guardian set it: from now on a revert is someone's choice
	if diff := cmp.Diff([]Change{seen}, l.All()); diff != "" {
		t.Errorf("after Reconcile (-want +got):\n%s", diff)
	}
	if n := countEvents(logs, events.RemedyYielded); n != 1 {
		t.Errorf("%d remedy_yielded events, want 1", n)
	}
	if err := e.RestoreAll(context.Background(), "restore"); err != nil {
		t.Fatal(err)
	}
	if len(l.All()) != 0 || srv.config[policy.SettingStopWrites] != "yes" {
		t.Errorf("after RestoreAll: ledger %+v, live %q", l.All(), srv.config[policy.SettingStopWrites])
	}
	if diff := cmp.Diff(map[string]string{policy.SettingStopWrites: "yes", policy.SettingRewritePercent: "50"}, srv.config, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("live config (-want +got):\n%s", diff)
	}
}

// spyLedger records the ledger's writes, and when the staged entry is made
// durable, in the order they come with the CONFIG SETs (step).
type spyLedger struct {
	Ledger
	mu    sync.Mutex
	steps []string
}

func (l *spyLedger) step(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, s)
}

func (l *spyLedger) Steps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.steps)
}

func (l *spyLedger) Record(c Change) error {
	l.step("record")
	return l.Ledger.Record(c)
}

func (l *spyLedger) Stage(c Change) (func() error, error) {
	l.step("stage")
	sync, err := l.Ledger.Stage(c)
	if err != nil {
		return nil, err
	}
	return func() error {
		l.step("sync")
		return sync()
	}, nil
}

// TestExecuteStormHoldStaged: the hold that stops a rewrite storm, as the policy
// decides it, is applied as soon as its ledger entry is renamed into place and
// made durable after the CONFIG SET (each cron tick it waits adds an INCR file);
// the hold for a rewrite that would not fit prevents damage not yet done, and is
// durable first.
func TestExecuteStormHoldStaged(t *testing.T) {
	t.Parallel()
	storm := func(in *policy.Input) { in.Snapshot.Redis.Info.AOFLastBgrewriteStatus = "err" }
	wontFit := func(in *policy.Input) {
		in.Snapshot.Redis.Info.AOFBaseSize = 64 << 20
		in.Snapshot.Host.Available = true
		in.Snapshot.Host.AOFDir = monitor.DirReading{Path: "/var/lib/redis/appendonlydir", Known: true, Total: 1 << 30, Free: 1 << 20}
	}
	for _, tc := range []struct {
		name   string
		setup  func(in *policy.Input)
		reason string
		want   []string
	}{
		{name: "storm", setup: storm, reason: policy.IDAOFRewriteStorm, want: []string{"stage", "CONFIG SET", "sync", "record"}},
		{name: "would not fit", setup: wontFit, reason: policy.IDAOFRewriteWontFit, want: []string{"record", "CONFIG SET", "record"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := policy.Input{
				Snapshot: monitor.Snapshot{Instance: "main", Time: when, Redis: monitor.RedisReading{
					Info:   monitor.Info{Role: "master", AOFEnabled: true, AOFLastBgrewriteStatus: "ok", AOFLastWriteStatus: "ok", RDBLastBgsaveStatus: "ok"},
					Config: monitor.RedisConfig{policy.SettingRewritePercent: "100", "appendonly": "yes", "save": ""}}},
				Held: map[string]policy.Held{}, Remedies: policy.DefaultRemedies(), Thresholds: policy.DefaultThresholds(), Now: when,
			}
			tc.setup(&in)
			ds, _ := policy.Decide(in, policy.State{})
			var hold *policy.Decision
			for i, d := range ds {
				if d.Remedy == policy.RemedyRewriteRetry && d.Action == policy.ActSet {
					hold = &ds[i]
				}
			}
			if hold == nil || hold.Reason != tc.reason {
				t.Fatalf("decisions %+v, want rewrite_retry's hold for %s", ds, tc.reason)
			}
			l := &spyLedger{Ledger: openLedger(t, t.TempDir())}
			srv := newConfigServer(map[string]string{policy.SettingRewritePercent: "100"})
			srv.onSet = func(string, string) error {
				if _, ok := l.Get(policy.SettingRewritePercent); !ok {
					return errors.New("the ledger has no entry for the change")
				}
				l.step("CONFIG SET")
				return nil
			}
			e, _ := newExecutor(t, srv, l)
			if out := e.Execute(context.Background(), *hold); !out.OK {
				t.Fatalf("outcome %+v", out)
			}
			if diff := cmp.Diff(tc.want, l.Steps()); diff != "" {
				t.Errorf("ledger writes and CONFIG SET (-want +got):\n%s", diff)
			}
			if c, ok := l.Get(policy.SettingRewritePercent); !ok || !c.Applied || c.Value != "0" {
				t.Errorf("ledger entry %+v, %v; want the applied hold", c, ok)
			}
		})
	}
}

// TestDirectivesKeepsSettingLines: the config-file repair logs the lines that
// set something, never comments or the text of some other file the path may
// name by the time it is read again (the redis uid can swap redis.conf).
func TestDirectivesKeepsSettingLines(t *testing.T) {
	in := []string{
		"stop-writes-on-bgsave-error no",
		"  save 3600 1 300 100",
		"# Generated by CONFIG REWRITE",
		"",
		"root:$y$j9T$abc:19000:0:99999:7:::",
		"-----BEGIN PRIVATE KEY-----",
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
		"user default on nopass ~* &* +@all",
	}
	got := directives(in)
	want := []string{"stop-writes-on-bgsave-error no", "  save 3600 1 300 100", "user default on nopass ~* &* +@all"}
	if !slices.Equal(got, want) {
		t.Errorf("directives(%q) = %q, want %q", in, got, want)
	}
}

// TestReconcileRestartWithHeldValueInFile: a CONFIG REWRITE during the hold wrote
// the guardian's no into the config file, then Redis restarted. When the new
// process runs with the file's no, the entry follows it (run_id) and stays held;
// when it runs with the original (the setting given on its command line), the
// guardian yields at once, in the same reconcile, and rewrites the file: that
// no was the guardian's. Neither is an operator's yield.
func TestReconcileRestartWithHeldValueInFile(t *testing.T) {
	t.Parallel()
	for _, live := range []string{"no", "yes"} {
		t.Run("live="+live, func(t *testing.T) {
			t.Parallel()
			conf := filepath.Join(t.TempDir(), "redis.conf")
			if err := os.WriteFile(conf, []byte("port 0\nstop-writes-on-bgsave-error no\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			l := NewMemLedger()
			held := change(policy.SettingStopWrites, "yes", "no")
			held.RunID, held.ConfigFile, held.FileValue, held.Applied = "old", conf, "yes", true
			if err := l.Record(held); err != nil {
				t.Fatal(err)
			}
			srv := newConfigServer(map[string]string{policy.SettingStopWrites: live})
			set := srv.reply
			srv.reply = func(args []string) (any, error) {
				if len(args) == 2 && args[1] == "REWRITE" {
					text := "port 0\nstop-writes-on-bgsave-error " + srv.config[policy.SettingStopWrites] + "\n"
					return "OK", os.WriteFile(conf, []byte(text), 0o644)
				}
				return set(args)
			}
			e, logs := newExecutor(t, srv, l)
			yielded := e.Reconcile(monitor.RedisReading{
				Info:   monitor.Info{RunID: "new", ConfigFile: conf},
				Config: monitor.RedisConfig{policy.SettingStopWrites: live},
			}, true)
			if len(yielded) != 0 {
				t.Errorf("yielded to an operator: %+v", yielded)
			}
			b, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			switch live {
			case "no":
				want := held
				want.RunID = "new"
				if diff := cmp.Diff([]Change{want}, l.All()); diff != "" {
					t.Errorf("the entry did not follow the new process (-want +got):\n%s", diff)
				}
				if !strings.Contains(string(b), "stop-writes-on-bgsave-error no") {
					t.Errorf("the file changed during the hold:\n%s", b)
				}
			case "yes":
				if len(l.All()) != 0 {
					t.Errorf("the ledger still holds %+v", l.All())
				}
				if !strings.Contains(string(b), "stop-writes-on-bgsave-error yes") {
					t.Errorf("the file still says the guardian's no:\n%s", b)
				}
				if n := countEvents(logs, events.RemedyYielded); n != 1 {
					t.Errorf("%d remedy_yielded events, want 1", n)
				}
			}
		})
	}
}
