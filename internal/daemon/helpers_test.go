package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/instance"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/internal/testsys"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

const (
	instanceName = "test"
	// waitLong bounds every wait for the guardian or Redis to reach a state.
	waitLong = 20 * time.Second
	poll     = 20 * time.Millisecond
)

// guardianOpts says how startGuardian deviates from the daemon's defaults.
type guardianOpts struct {
	// Interval is the tick interval; 0 means 1s.
	Interval time.Duration
	// Remedies edits testRemedies() (nil: keep them).
	Remedies func(policy.Remedies)
	// Thresholds edits policy.DefaultThresholds() (nil: keep them).
	Thresholds func(*policy.Thresholds)
	// DryRun uses a MemLedger and Executor.DryRun, as mode dry-run does.
	DryRun bool
	// StateDir is where the ledger lives; "" means a new temp dir.
	StateDir string
	// Username and Password authenticate the guardian's client.
	Username, Password string
	// ConfigRefresh is how often CONFIG GET runs; 0 means the config default (1m).
	ConfigRefresh time.Duration
	// InfoRefresh is how often a tick reads every INFO section; 0 means the
	// config default (10s).
	InfoRefresh time.Duration
	// FastPoll, when set, replaces the config default (50ms); negative turns it off.
	FastPoll time.Duration
	// Report, Beat and BeatEvery are passed to the Instance (Report after the
	// tick counter is bumped).
	Report    func(daemon.TickReport)
	Beat      func()
	BeatEvery time.Duration
}

// testRemedies are the defaults with a fast bgsave_retry, so a lifted fault is
// noticed within a second instead of the production 5 s .. 5 min, and a short
// predictive dwell (its 30 s default is proven by the policy's unit tests).
func testRemedies() policy.Remedies {
	rs := policy.DefaultRemedies()
	policy.ConfigOf[*policy.StopWritesConfig](rs).PredictiveDwell = 500 * time.Millisecond
	r := policy.ConfigOf[*policy.BgsaveRetryConfig](rs)
	r.InitialBackoff = 200 * time.Millisecond
	r.MaxBackoff = time.Second
	// oom_shield holds oom-score-adj for as long as the instance forks, so the
	// ledger would never be empty after another remedy's episode, which these
	// tests assert; oomshield_integration_test.go turns it on.
	policy.ConfigOf[*policy.OOMShieldConfig](rs).Enabled = false
	return rs
}

// guardian is one daemon.Instance running against a test server, built by
// internal/instance as `redis-guardian run` builds it.
type guardian struct {
	t        *testing.T
	StateDir string
	Exec     *remediate.Executor
	Inst     *daemon.Instance
	Logs     *observer.ObservedLogs

	ticks  atomic.Int64
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startGuardian builds an Instance for srv and runs it until Stop or the test's
// cleanup (cancel and wait, so its final pass runs like on SIGTERM).
func startGuardian(t *testing.T, srv *testredis.Server, o guardianOpts) *guardian {
	t.Helper()
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.ConfigRefresh == 0 {
		o.ConfigRefresh = time.Minute
	}
	rem := testRemedies()
	if o.Remedies != nil {
		o.Remedies(rem)
	}
	th := policy.DefaultThresholds()
	if o.Thresholds != nil {
		o.Thresholds(&th)
	}

	obsCore, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(obsCore, zaptest.NewLogger(t).Core()))

	g := &guardian{t: t, StateDir: o.StateDir, Logs: logs, done: make(chan error, 1)}
	if g.StateDir == "" {
		g.StateDir = t.TempDir()
	}
	cfg := config.Default()
	cfg.Interval, cfg.ConfigRefresh, cfg.StateDir = o.Interval, o.ConfigRefresh, g.StateDir
	// Each test's instance has the host's fork slots to itself: tests running
	// at once must not make each other's saves wait.
	cfg.RuntimeDir = g.StateDir
	if o.InfoRefresh != 0 {
		cfg.InfoRefresh = o.InfoRefresh
	}
	if o.FastPoll != 0 {
		cfg.FastPoll = max(o.FastPoll, 0)
	}
	cfg.Timeouts = config.Timeouts{Connect: 2 * time.Second, Command: time.Second}
	if o.DryRun {
		cfg.Mode = config.ModeDryRun
	}
	in := cfg.Instances[0]
	in.Name, in.Addr, in.Username, in.Password = instanceName, srv.Socket, o.Username, o.Password
	in.Thresholds, in.Remedies, in.IgnoreFindings = th, rem, nil
	b, err := instance.Build(cfg, in, instance.Options{
		Log: log, Beat: o.Beat, BeatEvery: o.BeatEvery,
		Report: func(r daemon.TickReport) {
			g.ticks.Add(1)
			if o.Report != nil {
				o.Report(r)
			}
		},
	})
	if err != nil {
		t.Fatalf("build the guardian: %v", err)
	}
	g.Exec, g.Inst = b.Executor, b.Loop
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- g.Inst.Run(ctx) }()
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("guardian Run: %v", err)
		}
		b.Close()
	})
	return g
}

// Stop cancels the loop and waits for Run (and its final pass) to return.
func (g *guardian) Stop() error {
	g.once.Do(func() {
		g.cancel()
		select {
		case g.err = <-g.done:
		case <-time.After(15 * time.Second):
			g.err = errors.New("Run did not return within 15s of cancel")
		}
	})
	return g.err
}

// Ticks is the number of completed ticks.
func (g *guardian) Ticks() int64 { return g.ticks.Load() }

// waitTicks waits until n more ticks have completed.
func (g *guardian) waitTicks(n int64) {
	g.t.Helper()
	want := g.Ticks() + n
	deadline := time.Now().Add(waitLong)
	for g.Ticks() < want {
		if time.Now().After(deadline) {
			g.t.Fatalf("guardian completed %d ticks, want %d within %s", g.Ticks(), want, waitLong)
		}
		time.Sleep(poll)
	}
}

// observe lets the guardian run for d and for the ticks d holds (an observation
// window for counting events, not a wait for a condition) and returns how many
// ticks it completed; it fails the test if the loop stopped ticking.
func (g *guardian) observe(d time.Duration) int64 {
	g.t.Helper()
	start, t0 := time.Now(), g.Ticks()
	// At least d, and at least the ticks d holds at the interval: on a loaded
	// machine ticks run late, and what is observed is what the guardian did in
	// that many ticks, not in that much wall-clock time.
	want := max(int64(d/g.Inst.Interval)-1, 1)
	limit := 4*d + 10*time.Second
	for time.Since(start) < d || g.Ticks()-t0 < want {
		if time.Since(start) > limit {
			g.t.Fatalf("guardian completed %d ticks in %s, want at least %d", g.Ticks()-t0, time.Since(start).Round(time.Millisecond), want)
		}
		time.Sleep(poll)
	}
	return g.Ticks() - t0
}

// entry is one observed log entry with its fields flattened.
type entry struct {
	Time    time.Time
	Level   zapcore.Level
	Message string
	Fields  map[string]any
}

func (e entry) str(k string) string {
	v, ok := e.Fields[k]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func (e entry) String() string {
	return fmt.Sprintf("%s %s %q %v", e.Time.Format("15:04:05.000"), e.Level, e.Message, e.Fields)
}

// fieldsEq is a filter on an entry's string fields; "" as a value means "absent or empty".
type fieldsEq map[string]string

func (f fieldsEq) match(e entry) bool {
	for k, v := range f {
		if e.str(k) != v {
			return false
		}
	}
	return true
}

// entries returns the observed entries that match every filter.
func (g *guardian) entries(filter fieldsEq) []entry {
	var out []entry
	for _, le := range g.Logs.All() {
		e := entry{Time: le.Time, Level: le.Level, Message: le.Message, Fields: le.ContextMap()}
		if filter.match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitEntry waits for the first entry matching filter (and pred, when not nil).
func (g *guardian) waitEntry(filter fieldsEq, pred func(entry) bool) entry {
	g.t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		for _, e := range g.entries(filter) {
			if pred == nil || pred(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no log entry with %v within %s; entries:\n%s", filter, waitLong, g.dump())
		}
		time.Sleep(poll)
	}
}

func (g *guardian) dump() string {
	var b strings.Builder
	for _, e := range g.entries(nil) {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// ledgerChanges reads the ledger file back from disk, as a restarted guardian would.
func ledgerChanges(t *testing.T, stateDir string) []remediate.Change {
	t.Helper()
	ch, err := remediate.ReadLedger(remediate.LedgerPath(stateDir, instanceName))
	if err != nil {
		t.Fatalf("read the ledger: %v", err)
	}
	return ch
}

func ledgerExists(stateDir, name string) bool {
	_, err := os.Stat(remediate.LedgerPath(stateDir, name))
	return err == nil
}

// ctxT is a context for one client call.
func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func configGet(t *testing.T, c *redis.Client, name string) string {
	t.Helper()
	m, err := c.ConfigGet(ctxT(t), name).Result()
	if err != nil {
		t.Fatalf("CONFIG GET %s: %v", name, err)
	}
	v, ok := m[name]
	if !ok {
		t.Fatalf("CONFIG GET %s: not in reply %v", name, m)
	}
	return v
}

func configSet(t *testing.T, c *redis.Client, name, value string) {
	t.Helper()
	if err := c.ConfigSet(ctxT(t), name, value).Err(); err != nil {
		t.Fatalf("CONFIG SET %s %s: %v", name, value, err)
	}
}

// waitConfig waits until CONFIG GET name answers want.
func waitConfig(t *testing.T, c *redis.Client, name, want string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		got := configGet(t, c, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %q, want %q within %s", name, got, want, waitLong)
		}
		time.Sleep(poll)
	}
}

// bgsave asks for a BGSAVE; the reply does not matter (a failing fork answers
// with an error): tests look at INFO and the log.
func bgsave(t *testing.T, c *redis.Client) {
	t.Helper()
	_ = c.BgSave(ctxT(t)).Err()
}

// saveOnce runs a successful BGSAVE, so dump.rdb exists and later estimates use
// its size.
func saveOnce(t *testing.T, srv *testredis.Server, c *redis.Client) {
	t.Helper()
	if err := c.BgSave(ctxT(t)).Err(); err != nil {
		t.Fatalf("BGSAVE: %v", err)
	}
	srv.WaitFor(t, "first save ok", waitLong, func(i map[string]string) bool {
		return testredis.SaveStatus("ok")(i) && i["rdb_saves"] != "0"
	})
}

// --- the real binary, for SIGKILL tests ---

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// guardianBinary builds cmd/redis-guardian once per test binary.
func guardianBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "rg-bin-*")
		if binErr != nil {
			return
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			binErr = fmt.Errorf("find go: %w", err)
			return
		}
		binPath = filepath.Join(binDir, "redis-guardian")
		cmd := exec.Command(gobin, "build", "-o", binPath, "github.com/redis-guardian/redis-guardian/cmd/redis-guardian")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w: %s", err, bytes.TrimSpace(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build redis-guardian: %v", binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	testsys.StopJournald()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for a writer process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one run of the redis-guardian binary.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// startBinary runs `redis-guardian run` with args; t.Cleanup kills it if it is
// still running.
func startBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	return startBinaryEnv(t, nil, args...)
}

// startBinaryEnv is startBinary with extra environment variables (NOTIFY_SOCKET ...).
func startBinaryEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	bin := guardianBinary(t)
	p := &proc{t: t, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--metrics-listen") }) {
		// Tests run side by side: none may take the default metrics port.
		p.cmd.Args = append(p.cmd.Args, "--metrics-listen=")
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start redis-guardian: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("redis-guardian pid %d output:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})
	return p
}

// signal sends sig and waits for the process to exit.
func (p *proc) signal(sig syscall.Signal) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to redis-guardian: %v", sig, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(15 * time.Second):
		p.t.Fatalf("redis-guardian did not exit within 15s of %v; output:\n%s", sig, p.out.String())
		return nil
	}
}

// waitOutput waits until the process's output matches re.
func (p *proc) waitOutput(re *regexp.Regexp) {
	p.t.Helper()
	deadline := time.Now().Add(waitLong)
	for !re.MatchString(p.out.String()) {
		select {
		case <-p.done:
			p.t.Fatalf("redis-guardian exited (%v) before its output matched %s:\n%s", p.err, re, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("redis-guardian output did not match %s within %s:\n%s", re, waitLong, p.out.String())
		}
		time.Sleep(poll)
	}
}

// eventRE matches a console log line with "event": "<name>" among its fields.
func eventRE(name string) *regexp.Regexp {
	return regexp.MustCompile(`"event":\s*"` + regexp.QuoteMeta(name) + `"`)
}

// tickSpans records when each of the guardian's ticks ran, from its reports
// (guardianOpts.Report), so a test can tell which tick logged an entry and count
// ticks instead of trusting the clock.
type tickSpans struct {
	mu    sync.Mutex
	spans [][2]time.Time
}

func (s *tickSpans) report(r daemon.TickReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spans = append(s.spans, [2]time.Time{r.Start, r.Start.Add(r.Duration)})
}

// of waits for the tick that logged e to complete and returns its index and
// span.
func (s *tickSpans) of(t *testing.T, e entry) (int, [2]time.Time) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		s.mu.Lock()
		for i, sp := range s.spans {
			if !e.Time.Before(sp[0]) && !e.Time.After(sp[1]) {
				s.mu.Unlock()
				return i, sp
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no tick that logged %s completed within %s", e, waitLong)
		}
		time.Sleep(poll)
	}
}

// sameTick returns the guardian's entries matching filter that the tick which
// logged e logged, in order.
func (s *tickSpans) sameTick(t *testing.T, g *guardian, e entry, filter fieldsEq) []entry {
	t.Helper()
	_, sp := s.of(t, e)
	var out []entry
	for _, x := range g.entries(filter) {
		if !x.Time.Before(sp[0]) && !x.Time.After(sp[1]) {
			out = append(out, x)
		}
	}
	return out
}

// gapBefore is how long after the start of the previous tick the tick that
// logged e started.
func (s *tickSpans) gapBefore(t *testing.T, e entry) time.Duration {
	t.Helper()
	i, sp := s.of(t, e)
	if i == 0 {
		t.Fatalf("%s was logged by the first tick: no gap to measure", e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return sp[0].Sub(s.spans[i-1][0])
}

// startedBetween counts the ticks that started after from and no later than
// the tick that logged e.
func (s *tickSpans) startedBetween(t *testing.T, from time.Time, e entry) int {
	t.Helper()
	i, _ := s.of(t, e)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sp := range s.spans[:i+1] {
		if sp[0].After(from) {
			n++
		}
	}
	return n
}
