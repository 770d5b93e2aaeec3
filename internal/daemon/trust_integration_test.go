package daemon_test

// Integration tests of what makes the guardian trustworthy: the ledger keeps every
// change whose fate is unknown (a lost reply), follows the Redis a change was made on
// across a reload, has exactly one writer, stops only its own instance when it cannot
// be read, and the guardian never overrides an operator within an episode.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/status"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// fastBinaryConfig is the part of a binary test's config before remedies: a short
// interval, and the production command timeout spelled out, since the lost-reply
// test depends on it.
const fastBinaryConfig = "interval: 200ms\ntimeouts:\n  connect: 2s\n  command: 1s\n"

// TestLostReplyKeepsEntry: the reply to the guardian's CONFIG SET is lost (held back
// past the command timeout) although Redis applied it. The guardian must keep the
// ledger entry, the only record of a change that is live, and restore the setting
// once a save succeeds.
func TestLostReplyKeepsEntry(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{TCP: true})
	c := srv.Client(t)
	proxy := startReplyDelayProxy(t, srv.Addr, policy.SettingStopWrites, 3*time.Second)
	stateDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	const name = "rg"
	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{name, proxy.Addr})
	p := startBinary(t, "-c", cfg)
	p.waitOutput(eventRE(string(events.Started)))

	proxy.armed.Store(true)
	lift := srv.FailFork(t)
	bgsave(t, c)
	// The SET times out (remedy_failed) or is read back as live (remedy_applied):
	// either way the tick that tried it has ended when one of them is logged.
	e := p.waitEntry(fieldsEq{"setting": policy.SettingStopWrites}, func(e entry) bool {
		return e.str("event") == string(events.RemedyApplied) || e.str("event") == string(events.RemedyFailed)
	})
	t.Logf("outcome of the lost reply: %s", e)
	if n := proxy.delayed.Load(); n != 1 {
		t.Fatalf("the proxy held back %d replies, want 1 (the test did not lose the reply it meant to)", n)
	}
	if got := configGet(t, c, policy.SettingStopWrites); got != "no" {
		t.Fatalf("%s = %q on Redis, want the guardian's no (the SET reached Redis)", policy.SettingStopWrites, got)
	}
	ch := ledgerOf(t, stateDir, name, policy.SettingStopWrites)
	if ch == nil {
		t.Fatalf("the ledger lost the entry of a change that is live on Redis; output:\n%s", p.out.String())
	}
	if ch.Original != "yes" || ch.Value != "no" {
		t.Errorf("ledger entry %+v, want %s yes -> no", *ch, policy.SettingStopWrites)
	}

	lift()
	srv.WaitFor(t, "the guardian's retry to save", waitLong, testredis.SaveStatus("ok"))
	waitConfig(t, c, policy.SettingStopWrites, "yes")
	waitFor(t, "the ledger to empty", func() bool { return !ledgerExists(stateDir, name) })
	p.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "setting": policy.SettingStopWrites}, nil)
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Errorf("redis-guardian after SIGTERM: %v", err)
	}
}

// TestReloadWithChangedAddrStrandsEntry: a reload points the instance that holds a
// change at another Redis. The held change stays where it was made (and is reported
// as stranded), the new Redis is left alone, and restore --addr puts the old one
// right once the service is stopped, not while it runs.
func TestReloadWithChangedAddrStrandsEntry(t *testing.T) {
	t.Parallel()
	a := testredis.Start(t, testredis.Options{TCP: true})
	b := testredis.Start(t, testredis.Options{TCP: true})
	ca, cb := a.Client(t), b.Client(t)
	stateDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	const name = "rg"
	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{name, a.Addr})
	p := startBinary(t, "-c", cfg)
	p.waitOutput(eventRE(string(events.Started)))

	liftA := a.FailFork(t)
	bgsave(t, ca)
	p.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}, nil)
	waitConfig(t, ca, policy.SettingStopWrites, "no")
	holdsA := func(when string) {
		t.Helper()
		if got := configGet(t, ca, policy.SettingStopWrites); got != "no" {
			t.Fatalf("%s: A's %s = %q, want the guardian's no", when, policy.SettingStopWrites, got)
		}
		ch := ledgerOf(t, stateDir, name, policy.SettingStopWrites)
		if ch == nil || ch.Addr != a.Addr || ch.Original != "yes" || ch.Value != "no" {
			t.Fatalf("%s: the ledger holds %+v, want A's (%s) %s yes -> no", when, ch, a.Addr, policy.SettingStopWrites)
		}
	}
	holdsA("before the reload")

	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{name, b.Addr})
	reloadedAt := len(p.entries(nil))
	hup(t, p)
	p.waitEntry(fieldsEq{"event": string(events.Reloaded)}, nil)
	st := p.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDLedgerStranded}, nil)
	if st.Level != zapcore.ErrorLevel || st.str("severity") != string(policy.Critical) || st.str("instance") != name {
		t.Errorf("ledger_stranded = %s, want a critical finding at error level for instance %s", st, name)
	}
	if !strings.Contains(st.str("cause"), a.Addr) {
		t.Errorf("ledger_stranded cause %q does not name A (%s)", st.str("cause"), a.Addr)
	}
	// A few ticks on B, so anything the guardian would do there has been done.
	waitRedisTicks(t, b, 5)
	holdsA("after the reload")
	if got := configGet(t, cb, policy.SettingStopWrites); got != "yes" {
		t.Errorf("B's %s = %q, want yes (untouched)", policy.SettingStopWrites, got)
	}
	for _, e := range p.entries(nil)[reloadedAt:] {
		if e.str("event") == string(events.RemedyApplied) || e.str("event") == string(events.RemedyUndone) {
			t.Errorf("after the reload the guardian changed something: %s", e)
		}
	}

	// restore while the service runs: refused, because the ledger is locked.
	ledgerBefore := readFile(t, remediate.LedgerPath(stateDir, name))
	out, err := runGuardianCommand(t, "restore", "--addr", a.Addr, "-c", cfg, "--state-dir", stateDir)
	t.Logf("restore while the service runs (%v):\n%s", err, out)
	if err == nil {
		t.Errorf("restore succeeded while the service holds the ledger")
	}
	if !regexp.MustCompile(`(?i)in use by another redis-guardian|lock`).MatchString(out) {
		t.Errorf("restore's refusal does not say the ledger is locked by another redis-guardian:\n%s", out)
	}
	if !regexp.MustCompile(`(?i)stop (it|the service|redis-guardian)|systemctl stop`).MatchString(out) {
		t.Errorf("restore's refusal does not say to stop the service first:\n%s", out)
	}
	holdsA("after the refused restore")
	if after := readFile(t, remediate.LedgerPath(stateDir, name)); !bytes.Equal(after, ledgerBefore) {
		t.Errorf("the refused restore changed the ledger:\nbefore %s\nafter  %s", ledgerBefore, after)
	}

	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("redis-guardian after SIGTERM: %v", err)
	}
	holdsA("after the service stopped")
	liftA()
	out, err = runGuardianCommand(t, "restore", "--addr", a.Addr, "-c", cfg, "--state-dir", stateDir)
	if err != nil {
		t.Fatalf("restore --addr A after the stop: %v\n%s", err, out)
	}
	t.Logf("restore after the stop:\n%s", out)
	if got := configGet(t, ca, policy.SettingStopWrites); got != "yes" {
		t.Errorf("A's %s = %q after restore, want yes", policy.SettingStopWrites, got)
	}
	if ledgerExists(stateDir, name) {
		t.Errorf("the ledger still holds %+v after restore", ledgerAll(t, stateDir, name))
	}
	if got := configGet(t, cb, policy.SettingStopWrites); got != "yes" {
		t.Errorf("B's %s = %q, want yes (untouched)", policy.SettingStopWrites, got)
	}
}

// TestSecondGuardianRefused: a second `redis-guardian run` on the same state dir
// exits at start, saying another guardian holds the ledger; the first carries on.
func TestSecondGuardianRefused(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	stateDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	const name = "rg"
	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{name, srv.Socket})
	first := startBinary(t, "-c", cfg)
	first.waitOutput(eventRE(string(events.Started)))
	lockPath := filepath.Join(stateDir, name+".lock")
	firstPID := strconv.Itoa(first.cmd.Process.Pid)

	second := startBinary(t, "-c", cfg)
	select {
	case <-second.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the second redis-guardian still runs 10s after start; output:\n%s", second.out.String())
	}
	out := second.out.String()
	t.Logf("second redis-guardian (%v):\n%s", second.err, out)
	if second.err == nil {
		t.Errorf("the second redis-guardian exited 0")
	}
	if !strings.Contains(out, "another redis-guardian") || !strings.Contains(out, lockPath) {
		t.Errorf("the second redis-guardian's output does not name another redis-guardian and the lock %s:\n%s", lockPath, out)
	}
	if !strings.Contains(out, "pid "+firstPID) {
		t.Errorf("the second redis-guardian's output does not name the holder, pid %s:\n%s", firstPID, out)
	}
	if eventRE(string(events.Started)).MatchString(out) {
		t.Errorf("the second redis-guardian said started before refusing")
	}
	if got := strings.TrimSpace(string(readFile(t, lockPath))); got != firstPID {
		t.Errorf("%s holds %q after the refused start, want the first guardian's pid %s", lockPath, got, firstPID)
	}

	select {
	case <-first.done:
		t.Fatalf("the first redis-guardian exited (%v) when the second was refused:\n%s", first.err, first.out.String())
	default:
	}
	srv.FailFork(t)
	bgsave(t, c)
	first.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}, nil)
	waitConfig(t, c, policy.SettingStopWrites, "no")
	if ch := ledgerOf(t, stateDir, name, policy.SettingStopWrites); ch == nil || ch.Original != "yes" {
		t.Errorf("the first guardian's ledger holds %+v, want %s yes -> no", ch, policy.SettingStopWrites)
	}
}

// TestCorruptLedgerStopsOneInstance: a ledger that cannot be read turns off the
// remedies of its own instance only, is reported with its path, and is never
// rewritten; the other instance is remediated as usual.
func TestCorruptLedgerStopsOneInstance(t *testing.T) {
	t.Parallel()
	one := testredis.Start(t, testredis.Options{})
	two := testredis.Start(t, testredis.Options{})
	c1, c2 := one.Client(t), two.Client(t)
	stateDir := t.TempDir()
	corrupt := remediate.LedgerPath(stateDir, "one")
	// A real ledger cut short, as a full disk or a bad copy would leave it.
	content := []byte(fmt.Sprintf("{\n  \"version\": 1,\n  \"changes\": [\n    {\n      \"instance\": \"one\",\n      \"addr\": %q,\n      \"setting\": \"%s\",\n      \"original\": \"yes\",\n      \"va",
		one.Socket, policy.SettingStopWrites))
	if err := os.WriteFile(corrupt, content, 0o640); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{"one", one.Socket}, [2]string{"two", two.Socket})
	p := startBinary(t, "-c", cfg)
	p.waitOutput(eventRE(string(events.Started)))

	lu := p.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDLedgerUnreadable}, nil)
	if lu.str("instance") != "one" || lu.Level != zapcore.ErrorLevel || lu.str("severity") != string(policy.Critical) {
		t.Errorf("ledger_unreadable = %s, want a critical finding at error level for instance one", lu)
	}
	if !strings.Contains(lu.str("cause"), corrupt) {
		t.Errorf("ledger_unreadable cause %q does not name the file %s", lu.str("cause"), corrupt)
	}

	one.FailFork(t)
	two.FailFork(t)
	bgsave(t, c1)
	bgsave(t, c2)
	p.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites, "instance": "two"}, nil)
	waitConfig(t, c2, policy.SettingStopWrites, "no")
	// Instance one is still watched: its MISCONF is reported, then a few more ticks.
	p.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDMisconfRDB, "instance": "one"}, nil)
	waitRedisTicks(t, one, 5)
	if got := configGet(t, c1, policy.SettingStopWrites); got != "yes" {
		t.Errorf("instance one's %s = %q, want yes (its remedies are off)", policy.SettingStopWrites, got)
	}
	if err := c1.Set(ctxT(t), "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "MISCONF") {
		t.Errorf("SET on instance one: %v, want MISCONF (nothing lifted it)", err)
	}
	for _, e := range p.entries(fieldsEq{"instance": "one"}) {
		if strings.HasPrefix(e.str("event"), "remedy_") {
			t.Errorf("instance one, whose ledger is unreadable, had a remedy event: %s", e)
		}
	}
	if ch := ledgerOf(t, stateDir, "two", policy.SettingStopWrites); ch == nil || ch.Original != "yes" {
		t.Errorf("instance two's ledger holds %+v, want %s yes -> no", ch, policy.SettingStopWrites)
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Errorf("redis-guardian after SIGTERM: %v", err)
	}
	if got := readFile(t, corrupt); !bytes.Equal(got, content) {
		t.Errorf("the corrupt ledger was changed:\nbefore %q\nafter  %q", content, got)
	}
}

// TestOperatorRevertWinsDuringFault: the operator sets the toggle back while the
// fault persists; the guardian yields and does not take it again in this episode,
// however many ticks and config refreshes follow.
func TestOperatorRevertWinsDuringFault(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	ticks := &tickSpans{}
	g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, ConfigRefresh: 200 * time.Millisecond, Report: ticks.report})
	srv.FailFork(t)
	bgsave(t, c)
	applied := fieldsEq{"event": string(events.RemedyApplied), "setting": policy.SettingStopWrites}
	g.waitEntry(applied, nil)
	waitConfig(t, c, policy.SettingStopWrites, "no")

	configSet(t, c, policy.SettingStopWrites, "yes") // the operator, while the fork still fails
	reverted := time.Now()
	y := g.waitEntry(fieldsEq{"event": string(events.RemedyYielded), "setting": policy.SettingStopWrites}, nil)
	// The config is read again every 200 ms, the interval: one of the first ticks
	// that start after the revert sees it, however slow the machine (counted in
	// ticks, not time; three in case a fast poll comes before the refresh is due).
	if n := ticks.startedBetween(t, reverted, y); n > 3 {
		t.Errorf("yielded in tick %d after the operator's revert (%s later), want within 3: each reads the config again",
			n, y.Time.Sub(reverted).Round(time.Millisecond))
	}
	if y.str("new_value") != "yes" {
		t.Errorf("remedy_yielded = %s, want new_value yes", y)
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("the ledger holds %+v after yielding", ch)
	}

	// ~2 s: about ten ticks and config refreshes while the fault persists.
	configGets := func() int {
		stats, err := c.Info(ctxT(t), "commandstats").Result()
		if err != nil {
			t.Fatalf("INFO commandstats: %v", err)
		}
		m := regexp.MustCompile(`cmdstat_config\|get:calls=(\d+)`).FindStringSubmatch(stats)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// Watch for ten ticks and five config refreshes, however long a loaded machine
	// takes for them (about 2 s).
	gets0, ticks0, ours := configGets(), g.Ticks(), 0
	watched := time.Now()
	deadline := watched.Add(waitLong)
	for {
		ours++
		if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
			t.Fatalf("%s = %q %s after the operator set yes: the guardian overrode the operator",
				policy.SettingStopWrites, got, time.Since(reverted).Round(time.Millisecond))
		}
		if g.Ticks()-ticks0 >= 10 && configGets()-gets0-ours >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d ticks and %d config refreshes within %s: the window proves nothing", g.Ticks()-ticks0, configGets()-gets0-ours, waitLong)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("watched %d ticks and %d guardian CONFIG GETs over %s after the yield", g.Ticks()-ticks0, configGets()-gets0-ours,
		time.Since(watched).Round(time.Millisecond))
	if info := srv.Info(t); info["rdb_last_bgsave_status"] != "err" {
		t.Errorf("the fault did not persist through the window: rdb_last_bgsave_status %s", info["rdb_last_bgsave_status"])
	}
	if n := len(g.entries(applied)); n != 1 {
		t.Errorf("%d remedy_applied for %s, want 1 (no second toggle in the episode):\n%s", n, policy.SettingStopWrites, g.dump())
	}
	if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
		t.Errorf("the ledger holds %+v after the window", ch)
	}
}

// --- helpers ---

// ledgerAll reads an instance's ledger without its lock.
func ledgerAll(t *testing.T, stateDir, name string) []remediate.Change {
	t.Helper()
	all, err := remediate.ReadLedger(remediate.LedgerPath(stateDir, name))
	if err != nil {
		t.Fatalf("read the ledger of %s: %v", name, err)
	}
	return all
}

// ledgerOf returns the ledger's entry for setting, nil when there is none.
func ledgerOf(t *testing.T, stateDir, name, setting string) *remediate.Change {
	t.Helper()
	for _, c := range ledgerAll(t, stateDir, name) {
		if c.Setting == setting {
			return &c
		}
	}
	return nil
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runGuardianCommand runs a one-shot redis-guardian command (restore, check) and
// returns its combined output; err is non-nil for a non-zero exit.
func runGuardianCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, guardianBinary(t), args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("redis-guardian %s did not finish within 30s:\n%s", strings.Join(args, " "), out)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run redis-guardian %s: %v", strings.Join(args, " "), err)
	}
	return string(out), err
}

// entries parses the binary's console log lines ("time\tlevel\t[name\t]message\t{fields}")
// and returns those that match filter.
func (p *proc) entries(filter fieldsEq) []entry {
	var out []entry
	for _, line := range strings.Split(p.out.String(), "\n") {
		parts := strings.Split(line, "\t")
		if len(parts) < 3 {
			continue
		}
		ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", parts[0])
		if err != nil {
			continue
		}
		lvl, err := zapcore.ParseLevel(parts[1])
		if err != nil {
			continue
		}
		e := entry{Time: ts, Level: lvl, Message: parts[len(parts)-1], Fields: map[string]any{}}
		if last := parts[len(parts)-1]; strings.HasPrefix(last, "{") && json.Unmarshal([]byte(last), &e.Fields) == nil {
			e.Message = parts[len(parts)-2]
		}
		if filter.match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitEntry waits for the binary's first log line matching filter (and pred, when
// not nil), like guardian.waitEntry.
func (p *proc) waitEntry(filter fieldsEq, pred func(entry) bool) entry {
	p.t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		for _, e := range p.entries(filter) {
			if pred == nil || pred(e) {
				return e
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("redis-guardian exited (%v) before logging an entry with %v:\n%s", p.err, filter, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("redis-guardian logged no entry with %v within %s:\n%s", filter, waitLong, p.out.String())
		}
		time.Sleep(poll)
	}
}

// waitRedisTicks waits until a guardian has read srv's INFO n more times: its loop
// reads it once a tick, so that many ticks of the instance watching srv have run.
func waitRedisTicks(t *testing.T, srv *testredis.Server, n int) {
	t.Helper()
	c := srv.Client(t)
	re := regexp.MustCompile(`cmdstat_info:calls=(\d+)`)
	calls := func() int {
		raw, err := c.Info(ctxT(t), "commandstats").Result()
		if err != nil {
			t.Fatalf("INFO commandstats: %v", err)
		}
		m := re.FindStringSubmatch(raw)
		if m == nil {
			return 0
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	// A command is counted after it ran: the k-th poll sees the k polls before it.
	base, ours := calls(), 1
	deadline := time.Now().Add(waitLong)
	for {
		if got := calls() - base - ours; got >= n {
			return
		}
		ours++
		if time.Now().After(deadline) {
			t.Fatalf("the guardian did not read %s's INFO %d times within %s", srv.Socket, n, waitLong)
		}
		time.Sleep(poll)
	}
}

// replyDelayProxy forwards TCP connections to a Redis. Armed, it holds back the reply
// to the next CONFIG SET of its setting for delay, as a network that loses a reply
// does: Redis has applied the command, and the client times out.
type replyDelayProxy struct {
	Addr    string
	target  string
	setting string
	delay   time.Duration
	// armed: hold back the reply to the next CONFIG SET of setting (once).
	armed atomic.Bool
	// delayed counts the replies held back.
	delayed atomic.Int32

	ln     net.Listener
	quit   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  []net.Conn
}

func startReplyDelayProxy(t *testing.T, target, setting string, delay time.Duration) *replyDelayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &replyDelayProxy{Addr: ln.Addr().String(), target: target, setting: setting, delay: delay, ln: ln, quit: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		close(p.quit)
		_ = ln.Close()
		p.wg.Wait()
	})
	return p
}

// track registers conns for closing at cleanup; false once the proxy is closed.
func (p *replyDelayProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	p.conns = append(p.conns, conns...)
	return true
}

func (p *replyDelayProxy) serve() {
	defer p.wg.Done()
	want := []byte(strings.ToLower("\r\nCONFIG\r\n$3\r\nSET\r\n$" + strconv.Itoa(len(p.setting)) + "\r\n" + p.setting + "\r\n"))
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client, server) {
			return
		}
		// The client waits for each reply before it sends the next command, so the
		// first bytes from the server after a CONFIG SET went out are its reply.
		var hold atomic.Bool
		p.wg.Add(2)
		go p.pipe(server, client, func(b []byte) {
			if p.armed.Load() && bytes.Contains(bytes.ToLower(b), want) && p.armed.CompareAndSwap(true, false) {
				hold.Store(true)
			}
		})
		go p.pipe(client, server, func([]byte) {
			if hold.Swap(false) {
				p.delayed.Add(1)
				select {
				case <-time.After(p.delay):
				case <-p.quit:
				}
			}
		})
	}
}

// pipe copies src to dst, calling before on every chunk before it is written.
func (p *replyDelayProxy) pipe(dst, src net.Conn, before func([]byte)) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			before(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestYieldOutlivesGuardianRestart: the operator sets the toggle back to yes
// while the guardian holds it, and the guardian yields; then the guardian is
// killed and started again while the fault lasts. The restarted guardian must not
// take the setting back in that episode: it reads its yield from the state dir.
// (The soak, seed 20261208: set back at 18:57:31, the guardian killed at 18:57:44
// and started again, no again at 18:57:47, no save succeeded in between.) Once a
// save succeeds, the episode ends and the kept yield goes.
func TestYieldOutlivesGuardianRestart(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	c := srv.Client(t)
	stateDir, run := binaryConfig(t, srv)
	p := startBinary(t, run...)
	lift := srv.DenyDir(t)
	bgsave(t, c)
	waitHeld(t, stateDir, policy.SettingStopWrites, func(ch remediate.Change) bool { return ch.Applied })
	if err := c.ConfigSet(ctxT(t), policy.SettingStopWrites, "yes").Err(); err != nil {
		t.Fatalf("the operator's CONFIG SET: %v", err)
	}
	p.waitOutput(eventRE(string(events.RemedyYielded)))
	if err := p.signal(syscall.SIGKILL); err == nil {
		t.Fatalf("redis-guardian exited cleanly on SIGKILL; output:\n%s", p.out.String())
	}

	p = startBinary(t, run...)
	bgsave(t, c) // fails again: the dir is still denied
	// The tick that reads the denied dir or the failed save is the one that
	// would take the toggle back, right after it logs the finding; a second
	// lets that tick's CONFIG SET, if any, be logged too.
	p.waitOutput(regexp.MustCompile(`"finding":\s*"(` + policy.IDMisconfRDB + `|` + policy.IDBgsaveFailed + `|` + policy.IDDatadirNotWritable + `)"`))
	time.Sleep(time.Second)
	if got := configGet(t, c, policy.SettingStopWrites); got != "yes" {
		t.Errorf("%s = %q after the guardian restarted, want the operator's yes; guardian output:\n%s", policy.SettingStopWrites, got, p.out.String())
	}
	if re := regexp.MustCompile(`remedy_applied.*` + policy.SettingStopWrites + `|` + policy.SettingStopWrites + `.*remedy_applied`); re.MatchString(p.out.String()) {
		t.Errorf("the restarted guardian set %s again in the operator's episode:\n%s", policy.SettingStopWrites, p.out.String())
	}
	if _, err := os.Stat(remediate.YieldsPath(stateDir, instanceName)); err != nil {
		t.Errorf("the yield is not kept in the state dir: %v", err)
	}
	// status says so: the operator who wonders why MISCONF stays is told.
	out, _ := runGuardianCommand(t, append([]string{"status", "--format", "json"}, run...)...)
	var r status.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --format json: %v\n%s", err, out)
	}
	if len(r.Instances) != 1 || len(r.Instances[0].Yielded) != 1 || r.Instances[0].Yielded[0].Setting != policy.SettingStopWrites {
		t.Errorf("status does not show the yield of %s: %s", policy.SettingStopWrites, out)
	}

	lift()
	bgsave(t, c)
	srv.WaitFor(t, "a save to succeed", waitLong, testredis.SaveStatus("ok"))
	waitFor(t, "the kept yield to go once a save succeeded", func() bool {
		_, err := os.Stat(remediate.YieldsPath(stateDir, instanceName))
		return os.IsNotExist(err)
	})
}

// TestRestoreForgetsYields: `restore` gives everything back and starts over: the
// yields to operators a stopped guardian kept go too, so a reinstall does not
// inherit them.
func TestRestoreForgetsYields(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{})
	stateDir, run := binaryConfig(t, srv)
	l, err := remediate.OpenFileLedger(stateDir, instanceName)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SaveYields([]policy.Yield{{Remedy: policy.RemedyOOMShield, Setting: policy.SettingOOMScoreAdj, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if out, err := runGuardianCommand(t, append([]string{"restore"}, run...)...); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if _, err := os.Stat(remediate.YieldsPath(stateDir, instanceName)); !os.IsNotExist(err) {
		t.Errorf("the yields file is still there after restore (%v)", err)
	}
}
