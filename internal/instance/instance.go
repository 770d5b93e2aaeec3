// Package instance builds one watched Redis from its configuration: the client and
// collector that read it, the ledger and executor that write it, and the loop that
// ties them. It is the only place that wiring is written; the service, `check`,
// `restore`, the integration tests and the benchmark all build through it.
package instance

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/daemon"
	"github.com/redis-guardian/redis-guardian/internal/forkslot"
	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// Options are what an instance needs beyond its configuration.
type Options struct {
	// Host is the host source, shared by every instance of a process so its cache
	// serves them all; nil builds one.
	Host *monitor.HostSource
	// Peers is where the process's instances share their Redis's memory
	// (oom_relief's room); nil: the instance sees no other.
	Peers *Peers
	// Log is the process logger; the instance adds its name and address. Nil logs nothing.
	Log *zap.Logger
	// Timeout bounds one tick and every call in it; 0 means the interval, at least 1 s.
	Timeout time.Duration
	// OnEvent is told of every remedy event (metrics).
	OnEvent func(event events.Name, remedy, limit string)
	// Report, Beat and BeatEvery are passed to the loop (daemon.Instance).
	Report    func(daemon.TickReport)
	Beat      func()
	BeatEvery time.Duration
}

// Prepared is an instance whose client and collector exist but whose ledger is not
// open yet: a reload prepares every new instance before it stops an old one, so a
// bad one changes nothing, and opens the ledger only once the old loop is gone.
type Prepared struct {
	cfg       *config.Config
	in        config.Instance
	opts      Options
	Collector *monitor.Collector
	closeFn   func()
}

// Built is a complete instance, ready to run.
type Built struct {
	*Prepared
	Ledger   remediate.Ledger
	Executor *remediate.Executor
	Loop     *daemon.Instance
	// Slots are the instance's handle on the host's fork slots.
	Slots *forkslot.Slots
}

// forkReader adds the host's fork slots, as the instance sees them, to every
// snapshot (fork_budget decides from them), and the memory of the process's
// other instances on this host (oom_relief's room); it publishes its own.
type forkReader struct {
	*monitor.Collector
	slots *forkslot.Slots
	peers *Peers
}

func (r forkReader) Snapshot(ctx context.Context, now time.Time) monitor.Snapshot {
	s := r.Collector.Snapshot(ctx, now)
	s.Fork = r.slots.View()
	r.peers.publish(r.Name(), s)
	s.Peers = r.peers.others(r.Name())
	return s
}

// Build builds an instance from its configuration: Prepare, then Open.
func Build(cfg *config.Config, in config.Instance, o Options) (*Built, error) {
	p, err := Prepare(cfg, in, o)
	if err != nil {
		return nil, err
	}
	b, err := p.Open()
	if err != nil {
		p.Close()
		return nil, err
	}
	return b, nil
}

// Timeout is the tick deadline an instance of cfg gets when Options.Timeout is 0.
func Timeout(cfg *config.Config) time.Duration { return max(cfg.Interval, time.Second) }

// Prepare builds the client and collector of an instance. It does not connect.
func Prepare(cfg *config.Config, in config.Instance, o Options) (*Prepared, error) {
	if o.Timeout == 0 {
		o.Timeout = Timeout(cfg)
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Host == nil {
		o.Host = monitor.NewHostSource(monitor.HostOptions{})
	}
	tlsCfg, err := in.TLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", in.Name, err)
	}
	ro := monitor.RedisOptions{
		Addr: in.Addr, Username: in.Username, Password: in.Password, PasswordFile: in.PasswordFile,
		TLS: tlsCfg, DialTimeout: min(cfg.Timeouts.Connect, o.Timeout), CommandTimeout: min(cfg.Timeouts.Command, o.Timeout),
		ConfigRefresh: cfg.ConfigRefresh, InfoRefresh: cfg.InfoRefresh, ConfigCommand: in.ConfigCommand, ConfigParams: policy.ConfigParams(),
	}
	client, err := monitor.NewRedisClient(ro)
	if err != nil {
		// An address that does not parse is quoted whole, password included.
		return nil, fmt.Errorf("instance %s: %w", in.Name, monitor.RedactError(in.Addr, err))
	}
	col := monitor.NewCollector(monitor.CollectorOptions{
		Name: in.Name, Addr: monitor.RedactAddr(in.Addr), Redis: monitor.NewRedisSource(client, ro), Host: o.Host,
		HostChecks: in.HostChecks, LogFile: in.LogFile, FileSettings: policy.HeldSettings(),
		// An early tick (a log line, close polling) reuses the host reading of
		// the last regular one.
		HostEvery: cfg.Interval * 9 / 10,
	})
	return &Prepared{cfg: cfg, in: in, opts: o, Collector: col, closeFn: func() { _ = client.Close() }}, nil
}

// Open opens the instance's ledger (in memory for dry-run) and builds the
// instance on it. On error the client stays open: the caller may still run the
// instance with OpenBlocked, or Close it.
func (p *Prepared) Open() (*Built, error) {
	ledger, err := OpenLedger(p.cfg, p.in.Name)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", p.in.Name, err)
	}
	return p.build(ledger, nil), nil
}

// OpenBlocked builds the instance with remedies off, because its ledger cannot be
// used (why): it is watched and reported on, a critical finding names the file,
// and nothing is changed, on Redis or on the file.
func (p *Prepared) OpenBlocked(why error) *Built { return p.build(remediate.NewMemLedger(), why) }

// Adopt builds the instance on a ledger that is already open: a reload's changed
// instance takes over its predecessor's, so the lock is never free for another
// process to take between the old loop and the new one.
func (p *Prepared) Adopt(ledger remediate.Ledger) *Built { return p.build(ledger, nil) }

// build is the one place an instance's executor and loop are made, blocked or not.
// blocked, when set, is why the ledger cannot be used: the executor runs dry on the
// given (in-memory) ledger and the loop reports why; everything else is the same,
// so a blocked instance polls as fast, reports its remedy events and says whether
// its state dir is safe like any other.
func (p *Prepared) build(ledger remediate.Ledger, blocked error) *Built {
	in, o := p.in, p.opts
	ilog := o.Log.With(zap.String("instance", in.Name), zap.String("addr", monitor.RedactAddr(in.Addr)))
	if fl, ok := ledger.(*remediate.FileLedger); ok && fl.ReserveErr() != nil {
		ilog.Warn("the ledger has no space in reserve (the state dir's disk is full); it will be made at the next write that finds room",
			zap.String("ledger", fl.Path()), zap.Error(fl.ReserveErr()))
	}
	var insecure error
	if p.cfg.Mode != config.ModeDryRun {
		// Read now, not when the ledger was opened: an adopted ledger's state dir
		// may have been fixed (or broken) since.
		insecure = remediate.StateInsecure(p.cfg.StateDir, in.Name)
	}
	// Every instance of every guardian of the host shares the slot files of
	// runtime_dir; each instance opens its own (a lock of another open of the
	// same process excludes it as another process's does).
	maxForks, budget := 1, false
	if fb := policy.ConfigOf[*policy.ForkBudgetConfig](in.Remedies); fb != nil {
		maxForks, budget = fb.MaxConcurrent, fb.Enabled
	}
	slots := forkslot.New(p.cfg.RuntimeDir, maxForks, in.Name)
	exec := &remediate.Executor{
		Instance: in.Name, Addr: monitor.RedactAddr(in.Addr), Client: p.Collector.Redis().Client(), ConfigCommand: in.ConfigCommand,
		Ledger: ledger, DryRun: p.cfg.Mode == config.ModeDryRun || blocked != nil, Log: ilog.Named("remediate"), Now: time.Now,
		OnEvent: o.OnEvent, Slots: slots, OwnForksTakeSlots: budget,
	}
	loop := &daemon.Instance{
		Reader: forkReader{p.Collector, slots, o.Peers}, Writer: exec, Thresholds: in.Thresholds, Remedies: in.Remedies, Ignore: in.IgnoreSet(),
		Blocked: blocked, Insecure: insecure, Interval: p.cfg.Interval, FastPoll: p.cfg.FastPoll, Timeout: o.Timeout, Log: ilog,
		Report: o.Report, Beat: o.Beat, BeatEvery: o.BeatEvery,
	}
	return &Built{Prepared: p, Ledger: ledger, Executor: exec, Loop: loop, Slots: slots}
}

// Name is the instance's name.
func (p *Prepared) Name() string { return p.in.Name }

// Config is the instance's configuration.
func (p *Prepared) Config() config.Instance { return p.in }

// Timeout is the instance's tick deadline.
func (p *Prepared) Timeout() time.Duration { return p.opts.Timeout }

// Close closes the instance's client.
func (p *Prepared) Close() { p.closeFn() }

// Close releases the ledger (its lock) and the fork slot (a loop whose last
// pass could not reach Redis did not), and closes the client.
func (b *Built) Close() {
	b.opts.Peers.forget(b.Name())
	_ = b.Slots.Release()
	b.Slots.StopWaiting()
	_ = b.Ledger.Close()
	b.Prepared.Close()
}

// OpenLedger opens an instance's ledger: on disk in state_dir, or in memory for
// dry-run, which must not touch the state of a guardian that enforces.
func OpenLedger(cfg *config.Config, name string) (remediate.Ledger, error) {
	if cfg.Mode == config.ModeDryRun {
		return remediate.NewMemLedger(), nil
	}
	return remediate.OpenFileLedger(cfg.StateDir, name)
}
