package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/journal"
	"github.com/redis-guardian/redis-guardian/internal/notify"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/internal/testsys"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// writeConfig writes a guardian config watching the given name=socket pairs, with a
// fast BGSAVE retry so lifted faults are noticed quickly.
func writeConfig(t *testing.T, path, stateDir string, extra string, insts ...[2]string) {
	t.Helper()
	var b strings.Builder
	// A fork fault set before a guardian's tick is predicted (fork_nproc_exhausted),
	// and a predictive toggle waits predictive_dwell (30 s by default, proven by
	// the policy's unit tests) before it is given back: short here. oom_shield
	// is off: it holds for as long as the instance forks (see testRemedies).
	fmt.Fprintf(&b, "state_dir: %s\n%sremedies:\n  bgsave_retry:\n    initial_backoff: 200ms\n    max_backoff: 1s\n  stop_writes:\n    predictive_dwell: 500ms\n  oom_shield:\n    enabled: false\ninstances:\n", stateDir, extra)
	for _, in := range insts {
		fmt.Fprintf(&b, "  - name: %s\n    addr: %s\n", in[0], in[1])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitJournal polls the journal until an entry matches every match argument and
// pred, and returns it.
func waitJournal(t *testing.T, pred func(testsys.JournalEntry) bool, matches ...string) testsys.JournalEntry {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		for _, e := range testsys.ReadJournal(t, matches...) {
			if pred == nil || pred(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no journal entry matching %v within %s; entries of the guardian:\n%s", matches, waitLong, journalDump(t, matches[0]))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func journalDump(t *testing.T, match string) string {
	var b strings.Builder
	for _, e := range testsys.ReadJournal(t, match) {
		fmt.Fprintf(&b, "  %s %s %s\n", e["PRIORITY"], e["MESSAGE_ID"], e["MESSAGE"])
	}
	return b.String()
}

// wantFields reports every field of e that differs from want ("*" means any
// non-empty value).
func wantFields(t *testing.T, what string, e testsys.JournalEntry, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := e[k]
		switch {
		case !ok:
			t.Errorf("%s: field %s missing; entry: %v", what, k, e)
		case v == "*" && got == "":
			t.Errorf("%s: field %s is empty", what, k)
		case v != "*" && got != v:
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

// TestJournalEntries runs the binary with native journal logging into a real
// systemd-journald, injects a real fork failure, and reads the entries back with
// journalctl: MESSAGE_ID, PRIORITY and the documented fields, selectable by field.
func TestJournalEntries(t *testing.T) {
	t.Parallel()
	testredis.RequireRoot(t)
	testsys.Journald(t)
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	saveOnce(t, srv, c)
	name := fmt.Sprintf("jt%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeConfig(t, cfg, filepath.Join(dir, "state"), "", [2]string{name, srv.Socket})

	p := startBinary(t, "-c", cfg, "--interval", "200ms", "--log-format", "journal")
	pid := "_PID=" + strconv.Itoa(p.cmd.Process.Pid)
	started := waitJournal(t, nil, pid, "MESSAGE_ID="+journal.MessageIDs["started"])
	wantFields(t, "started", started, map[string]string{"PRIORITY": "6", "SYSLOG_IDENTIFIER": "redis-guardian", "EVENT": "started", "CODE_FILE": "*", "CODE_LINE": "*", "CODE_FUNC": "*"})

	lift := srv.FailFork(t)
	bgsave(t, c)
	inst := "REDIS_INSTANCE=" + name
	raised := waitJournal(t, nil, inst, "FINDING="+policy.IDMisconfRDB, "MESSAGE_ID="+journal.MessageIDs["finding_raised"])
	wantFields(t, "finding raised", raised, map[string]string{
		"PRIORITY": "3", "SEVERITY": "critical", "REDIS_ADDR": srv.Socket, "CAUSE": "*", "FIX": "*", "SYSLOG_IDENTIFIER": "redis-guardian",
	})
	applied := waitJournal(t, nil, inst, "MESSAGE_ID="+journal.MessageIDs["remedy_applied"], "REMEDY="+policy.RemedyStopWrites)
	wantFields(t, "remedy applied", applied, map[string]string{
		"PRIORITY": "4", "SETTING": policy.SettingStopWrites, "OLD_VALUE": "yes", "NEW_VALUE": "no", "RESULT": "ok",
		"REDIS_ADDR": srv.Socket, "CAUSE": "*",
	})
	if !strings.HasSuffix(applied["CODE_FILE"], "executor.go") || applied["CODE_LINE"] == "" || !strings.Contains(applied["CODE_FUNC"], "remediate") {
		t.Errorf("remedy applied: CODE_FILE/LINE/FUNC = %q/%q/%q, want the executor's", applied["CODE_FILE"], applied["CODE_LINE"], applied["CODE_FUNC"])
	}
	if !strings.Contains(applied["MESSAGE"], policy.SettingStopWrites) {
		t.Errorf("remedy applied: MESSAGE %q does not say what was set", applied["MESSAGE"])
	}

	lift()
	undone := waitJournal(t, nil, inst, "MESSAGE_ID="+journal.MessageIDs["remedy_undone"])
	wantFields(t, "remedy undone", undone, map[string]string{"PRIORITY": "6", "SETTING": policy.SettingStopWrites, "OLD_VALUE": "no", "NEW_VALUE": "yes", "REMEDY": policy.RemedyStopWrites})
	waitJournal(t, nil, inst, "MESSAGE_ID="+journal.MessageIDs["finding_cleared"], "FINDING="+policy.IDMisconfRDB)

	// A reload with a broken file: the error is in MESSAGE (readable alone) and ERROR.
	if err := os.WriteFile(cfg, []byte("instances:\n  - name: x\n    adr: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	failed := waitJournal(t, nil, pid, "MESSAGE_ID="+journal.MessageIDs["reload_failed"])
	wantFields(t, "reload failed", failed, map[string]string{"PRIORITY": "3", "ERROR": "*"})
	if !strings.Contains(failed["MESSAGE"], "adr: unknown key") || !strings.Contains(failed["ERROR"], "adr: unknown key") {
		t.Errorf("reload failed: MESSAGE %q / ERROR %q do not name the bad key", failed["MESSAGE"], failed["ERROR"])
	}

	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Errorf("redis-guardian after SIGTERM: %v", err)
	}
	waitJournal(t, nil, pid, "MESSAGE_ID="+journal.MessageIDs["stopping"])
}

// TestNotifyReloadAndMetrics drives the binary through systemd's protocol and a
// Prometheus scrape: READY with a status, watchdog pings, reloads that add an
// instance, keep the old config when the new one is bad, and remove an instance
// (restoring what it held while its fault persists), then STOPPING.
func TestNotifyReloadAndMetrics(t *testing.T) {
	t.Parallel()
	testredis.RequireRoot(t)
	ns := testsys.ListenNotify(t)
	a := testredis.Start(t, testredis.Options{})
	b := testredis.Start(t, testredis.Options{})
	cb := b.Client(t)
	saveOnce(t, b, cb)
	dir := t.TempDir()
	cfg, state := filepath.Join(dir, "config.yaml"), filepath.Join(dir, "state")
	writeConfig(t, cfg, state, "", [2]string{"a", a.Socket})
	// A ledger left by an instance removed while the guardian was stopped.
	if err := os.MkdirAll(state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "gone.ledger.json"), []byte(`{"changes":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testredis.FreePort(t)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d", port)

	p := startBinaryEnv(t, []string{"NOTIFY_SOCKET=" + ns.Path, "WATCHDOG_USEC=900000"},
		"-c", cfg, "--interval", "200ms", "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", port))
	ready := ns.WaitFor(t, 0, "READY", "1", waitLong)
	p.waitOutput(regexp.MustCompile(`not in the configuration.*"instance_unconfigured": "gone"`))
	if st := ns.All()[ready].Fields["STATUS"]; !strings.HasPrefix(st, "1 instance: a") {
		t.Errorf("STATUS with READY = %q, want it to start with %q", st, "1 instance: a")
	}
	for i := 0; i < 3; i++ { // the loop pings while it ticks
		ready = ns.WaitFor(t, ready+1, "WATCHDOG", "1", 5*time.Second)
	}
	if code, body := httpGet(t, metricsURL+"/-/ready"); code != 200 {
		t.Errorf("/-/ready = %d %q, want 200", code, body)
	}
	if code, body := httpGet(t, metricsURL+"/-/healthy"); code != 200 {
		t.Errorf("/-/healthy = %d %q, want 200", code, body)
	}
	waitMetric(t, metricsURL, `redis_guardian_instance_up{instance="a"}`, 1)

	// Reload: add b.
	writeConfig(t, cfg, state, "", [2]string{"a", a.Socket}, [2]string{"b", b.Socket})
	mark := ns.Len()
	hup(t, p)
	rl := ns.WaitFor(t, mark, "RELOADING", "1", waitLong)
	if us, err := strconv.ParseInt(ns.All()[rl].Fields["MONOTONIC_USEC"], 10, 64); err != nil || us <= 0 {
		t.Errorf("RELOADING=1 without a valid MONOTONIC_USEC: %q", ns.All()[rl].Raw)
	}
	ns.WaitFor(t, rl+1, "READY", "1", waitLong)
	p.waitOutput(eventRE("reloaded"))
	waitMetric(t, metricsURL, `redis_guardian_instance_up{instance="b"}`, 1)

	// A real fault on b: the guardian holds stop-writes off there.
	liftB := b.FailFork(t)
	defer liftB()
	bgsave(t, cb)
	waitConfig(t, cb, policy.SettingStopWrites, "no")
	waitMetric(t, metricsURL, `redis_guardian_remedies_applied_total{instance="b",remedy="stop_writes"}`, 1)
	waitMetric(t, metricsURL, `redis_guardian_held_changes{instance="b"}`, 1)
	st := ns.All()[ns.WaitFor(t, rl, "STATUS", "*", waitLong)].Fields["STATUS"]
	deadline := time.Now().Add(waitLong)
	for !strings.Contains(st, "holding stop-writes-on-bgsave-error=no") {
		if time.Now().After(deadline) {
			t.Fatalf("STATUS never mentioned the held setting; last %q", st)
		}
		time.Sleep(poll)
		all := ns.All()
		for i := len(all) - 1; i >= 0; i-- {
			if s, ok := all[i].Fields["STATUS"]; ok {
				st = s
				break
			}
		}
	}

	// A bad file keeps everything running and says why.
	if err := os.WriteFile(cfg, []byte("interval: soon\ninstances:\n  - name: a\n    addr: "+a.Socket+"\n    pasword: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mark = ns.Len()
	hup(t, p)
	rl = ns.WaitFor(t, mark, "RELOADING", "1", waitLong)
	ns.WaitFor(t, rl+1, "READY", "1", waitLong)
	p.waitOutput(regexp.MustCompile(`reload failed, keeping the running configuration.*pasword: unknown key.*interval: \\"soon\\" is not a duration`))
	waitMetric(t, metricsURL, "redis_guardian_config_last_reload_successful", 0)
	if got := configGet(t, cb, policy.SettingStopWrites); got != "no" {
		t.Errorf("after a bad reload b's %s = %q: the old config should still hold it", policy.SettingStopWrites, got)
	}

	// Remove b while its fault persists: what it held is restored, its ledger goes.
	writeConfig(t, cfg, state, "", [2]string{"a", a.Socket})
	hup(t, p)
	waitConfig(t, cb, policy.SettingStopWrites, "yes")
	waitFor(t, "b's ledger to go", func() bool { return !ledgerExists(state, "b") })
	waitMetric(t, metricsURL, "redis_guardian_config_last_reload_successful", 1)
	waitFor(t, "b's series to go", func() bool {
		_, ok := scrape(t, metricsURL)[`redis_guardian_instance_up{instance="b"}`]
		return !ok
	})

	mark = ns.Len()
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Errorf("redis-guardian after SIGTERM: %v", err)
	}
	ns.WaitFor(t, mark, "STOPPING", "1", 5*time.Second)
}

// TestWatchdogStopsWhenALoopStalls runs two real loops against real servers with
// the watchdog on a test socket, then stalls one loop (its report blocks, as a hung
// read would): pings must stop although the other loop keeps ticking, and resume
// once the stalled loop moves again.
// Not parallel: go-systemd reads the notify socket from the process environment.
func TestWatchdogStopsWhenALoopStalls(t *testing.T) {
	testredis.RequireRoot(t)
	ns := testsys.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	t.Setenv("WATCHDOG_USEC", "600000")
	t.Setenv("WATCHDOG_PID", "")
	n, err := notify.New()
	if err != nil {
		t.Fatal(err)
	}
	wd := notify.NewWatchdog(n, nil)
	wd.Register("one")
	wd.Register("two")
	var stalled atomic.Bool
	unstall := make(chan struct{})
	blocked := make(chan struct{}, 1)
	one := startGuardian(t, testredis.Start(t, testredis.Options{}), guardianOpts{
		Interval: 100 * time.Millisecond, Beat: func() { wd.Beat("one") }, BeatEvery: wd.Period(),
	})
	startGuardian(t, testredis.Start(t, testredis.Options{}), guardianOpts{
		Interval: 100 * time.Millisecond, Beat: func() { wd.Beat("two") }, BeatEvery: wd.Period(),
		Report: func(daemon.TickReport) {
			if stalled.Load() {
				select {
				case blocked <- struct{}{}:
				default:
				}
				<-unstall
			}
		},
	})
	var once atomic.Bool
	t.Cleanup(func() { // before the guardians' cleanups: a blocked loop cannot stop
		if once.CompareAndSwap(false, true) {
			close(unstall)
		}
	})
	first := ns.WaitFor(t, 0, "WATCHDOG", "1", waitLong)
	ns.WaitFor(t, first+1, "WATCHDOG", "1", waitLong)

	stalled.Store(true)
	select {
	case <-blocked:
	case <-time.After(waitLong):
		t.Fatalf("the loop to stall did not complete a tick within %s", waitLong)
	}
	// One ping may still go out: the stalled loop beat after its previous tick.
	// It goes at the healthy loop's first beat a gap (a quarter of the timeout,
	// 150 ms) after the last ping; three more of its ticks, each at least an
	// interval (100 ms) after the one before, take it past that: counted in
	// ticks, not slept, so a loaded machine cannot outrun it.
	one.waitTicks(4)
	mark, ticks := ns.Len(), one.Ticks()
	// 2.5 watchdog timeouts, and at least five ticks of the healthy loop.
	time.Sleep(1500 * time.Millisecond)
	if n := one.Ticks() - ticks; n < 5 {
		one.waitTicks(5 - n)
	}
	if got := ns.Count(mark, "WATCHDOG"); got != 0 {
		t.Errorf("%d watchdog pings while a loop was stalled, want none", got)
	}
	stalled.Store(false)
	if once.CompareAndSwap(false, true) {
		close(unstall)
	}
	ns.WaitFor(t, mark, "WATCHDOG", "1", waitLong)
}

func hup(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// scrape fetches /metrics, lints it as promtool does, and returns every sample by
// its series text (name{label="v",...}, labels sorted).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("lint /metrics: %v", err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "redis_guardian_") {
			t.Errorf("/metrics lint: %s: %s", p.Metric, p.Text)
		}
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var lbl []string
			for _, l := range m.GetLabel() {
				lbl = append(lbl, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(lbl)
			key := name
			if len(lbl) > 0 {
				key += "{" + strings.Join(lbl, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// waitMetric waits until the series has the value.
func waitMetric(t *testing.T, base, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		got, ok := scrape(t, base)[series]
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (present %v), want %v", series, got, ok, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
