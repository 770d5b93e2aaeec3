package monitor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CollectorOptions configures the reading of one Redis instance.
type CollectorOptions struct {
	Name       string
	Addr       string
	Redis      *RedisSource
	Host       *HostSource
	HostChecks HostChecks
	// LogFile overrides CONFIG GET logfile (e.g. a path seen differently from here).
	LogFile string
	// LogBackscan is how much of the log's existing tail is read for recent causes.
	LogBackscan int64
	// LogPoll is how often the follower looks for new lines.
	LogPoll time.Duration
	// ProcRoot is where /proc is (tests); default "/proc".
	ProcRoot string
	// FileSettings are the settings looked up in Redis's own config file (those
	// the guardian may hold), to see a CONFIG REWRITE persist a held value.
	FileSettings []string
	// HostEvery is how old a host reading may be before a Snapshot reads the host
	// again: a tick that comes early (a log line, a save about to run, a child
	// running) reuses the last one. 0 reads the host at every Snapshot.
	HostEvery time.Duration
}

// Collector assembles Snapshots of one instance from its sources, and runs the log
// follower once Redis has said where it logs.
type Collector struct {
	opts CollectorOptions
	wake chan struct{}

	mu       sync.Mutex
	follower *Follower
	logPath  string
	startLog func(*Follower) (stop func())
	stopLog  func()
	scanned  map[LogKind]LogEvent
	scanErr  error
	confFile ConfigFileReading // the last reading of Redis's config file
	host     HostReading       // the last host reading, read at hostAt
	hostAt   time.Time
}

// NewCollector builds a collector.
func NewCollector(o CollectorOptions) *Collector {
	if o.LogBackscan == 0 {
		o.LogBackscan = 64 << 10
	}
	if o.LogPoll == 0 {
		o.LogPoll = 50 * time.Millisecond
	}
	o.ProcRoot = procRootOr(o.ProcRoot)
	return &Collector{opts: o, wake: make(chan struct{}, 1)}
}

// Name is the instance name.
func (c *Collector) Name() string { return c.opts.Name }

// Addr is the instance address.
func (c *Collector) Addr() string { return c.opts.Addr }

// Redis is the instance's Redis source.
func (c *Collector) Redis() *RedisSource { return c.opts.Redis }

// Wake receives when the log follower saw a line worth acting on at once.
func (c *Collector) Wake() <-chan struct{} { return c.wake }

// SetFollowerStarter installs how a follower is run (the daemon passes a function
// that starts it under its errgroup) and returns how to stop it, which happens when
// Redis starts logging elsewhere. Without one, Snapshot scans the log's tail instead,
// which is what a one-shot check needs.
func (c *Collector) SetFollowerStarter(start func(*Follower) (stop func())) {
	c.mu.Lock()
	c.startLog = start
	c.mu.Unlock()
}

// Snapshot reads every source once. It never fails: each source's error is kept in
// its own reading.
func (c *Collector) Snapshot(ctx context.Context, now time.Time) Snapshot {
	s := Snapshot{Instance: c.opts.Name, Addr: c.opts.Addr, Time: now}
	s.Redis = c.opts.Redis.Read(ctx, now)
	s.Host = c.hostReading(ctx, s.Redis, now)
	s.Log = c.readLog(s.Redis, s.Host)
	s.Redis.File = c.readConfigFile(s.Redis, s.Host)
	return s
}

// readConfigFile reads Redis's config file when it is on this host, again only
// when its size or time changed (one stat a tick): a CONFIG REWRITE is seen at the
// tick after it.
func (c *Collector) readConfigFile(r RedisReading, h HostReading) ConfigFileReading {
	path := r.Info.ConfigFile
	if r.Err != nil || path == "" || len(c.opts.FileSettings) == 0 || (!h.Available && c.opts.HostChecks != HostChecksOn) {
		return ConfigFileReading{Path: path}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.confFile; old.Path == path && old.Known {
		if st, err := os.Stat(path); err == nil && st.Size() == old.Size && st.ModTime().Equal(old.ModTime) {
			return old
		}
	}
	c.confFile = ReadConfigFile(path, c.opts.FileSettings)
	return c.confFile
}

// hostReading returns the last host reading while it is younger than HostEvery
// and of the same Redis process, else reads the host again.
func (c *Collector) hostReading(ctx context.Context, r RedisReading, now time.Time) HostReading {
	c.mu.Lock()
	last, at := c.host, c.hostAt
	c.mu.Unlock()
	if c.opts.HostEvery > 0 && !at.IsZero() && r.Err == nil && last.PID == r.Info.ProcessID &&
		now.Sub(at) >= 0 && now.Sub(at) < c.opts.HostEvery {
		return last
	}
	h := c.readHost(ctx, r)
	c.mu.Lock()
	c.host, c.hostAt = h, now
	c.mu.Unlock()
	return h
}

func (c *Collector) readHost(ctx context.Context, r RedisReading) HostReading {
	switch {
	case c.opts.HostChecks == HostChecksOff:
		h := unknownHost("")
		h.Disabled = true
		return h
	case c.opts.HostChecks != HostChecksOn && !IsLocalAddr(c.opts.Addr):
		return unknownHost(fmt.Sprintf("Redis at %s is not on this host", c.opts.Addr))
	case r.Err != nil:
		return unknownHost("Redis did not answer INFO, so its process is unknown")
	case c.opts.Host == nil:
		return unknownHost("host checks are not wired")
	}
	cfg := r.Config
	t := HostTarget{PID: r.Info.ProcessID, Dir: cfg["dir"], AOFDirName: cfg["appenddirname"], DBFilename: cfg["dbfilename"], AppendFilename: cfg["appendfilename"]}
	return c.opts.Host.Read(ctx, t)
}

func (c *Collector) readLog(r RedisReading, h HostReading) LogReading {
	src, path := c.logTarget(r, h)
	c.mu.Lock()
	defer c.mu.Unlock()
	if src != LogFile {
		return LogReading{Source: src, Path: path}
	}
	if path != c.logPath {
		// First sight of the path, or Redis now logs elsewhere: follow the new file.
		c.logPath = path
		if c.stopLog != nil {
			c.stopLog() // the old file's follower must neither leak nor keep waking the loop
		}
		c.follower, c.stopLog, c.scanned, c.scanErr = nil, nil, nil, nil
		// Read the tail now, so the first tick already knows recent causes; the
		// follower then reports what comes after.
		c.scanned, c.scanErr = ScanLogTail(path, c.opts.LogBackscan, time.Local)
		if c.startLog != nil {
			f := NewFollower(FollowerOptions{Path: path, Backscan: c.opts.LogBackscan, Poll: c.opts.LogPoll, Wake: c.wake})
			c.follower = f
			c.stopLog = c.startLog(f)
		}
	}
	if c.follower != nil {
		r := c.follower.Reading()
		if len(c.scanned) > 0 {
			merged := make(map[LogKind]LogEvent, len(c.scanned)+len(r.Last))
			for k, ev := range c.scanned {
				merged[k] = ev
			}
			for k, ev := range r.Last {
				if old, ok := merged[k]; !ok || !ev.Time.Before(old.Time) {
					merged[k] = ev
				}
			}
			r.Last = merged
		}
		return r
	}
	return LogReading{Source: LogFile, Path: path, Err: c.scanErr, Last: c.scanned}
}

// logTarget decides where the Redis log is, from the override or CONFIG.
func (c *Collector) logTarget(r RedisReading, h HostReading) (src LogSource, path string) {
	if c.opts.LogFile != "" {
		return LogFile, c.opts.LogFile
	}
	if !r.Config.Known() {
		return LogUnavailable, ""
	}
	if !h.Available && c.opts.HostChecks != HostChecksOn {
		return LogUnavailable, ""
	}
	src, path = LogSourceFromConfig(r.Config["logfile"], r.Config["syslog-enabled"] == "yes")
	if src == LogFile && !filepath.IsAbs(path) && h.PID > 0 {
		// Redis opens a relative logfile against its working directory at start.
		abs, err := resolveAgainstCwd(c.opts.ProcRoot, h.PID, path)
		if err != nil {
			// Resolving it against the guardian's own directory would follow the
			// wrong file, and flip between paths from tick to tick.
			return LogUnavailable, ""
		}
		path = abs
	}
	return src, path
}

// ScanLogTail reads the last n bytes of a Redis log and returns the newest event of
// each kind, for a one-shot check that has no follower running.
func ScanLogTail(path string, n int64, loc *time.Location) (map[LogKind]LogEvent, error) {
	// Never a plain open: a FIFO at the path would block it, and the tick (or the
	// one-shot check) with it, past any deadline (see openRegular).
	f, st, err := openRegular(path)
	if err != nil {
		return nil, fmt.Errorf("open redis log: %w", err)
	}
	defer f.Close()
	// Start one byte early: if that byte is a newline, the first full line is kept.
	off := st.Size() - n - 1
	if off < 0 {
		off = 0
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek redis log: %w", err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	out := map[LogKind]LogEvent{}
	first := off > 0
	for sc.Scan() {
		line := sc.Text()
		if first {
			// The first line after a seek is likely cut in the middle.
			first = false
			continue
		}
		if ev, ok := ParseLogLine(strings.TrimRight(line, "\r"), loc); ok {
			if ev.Time.IsZero() {
				ev.Time = st.ModTime()
			}
			out[ev.Kind] = carryCause(out[ev.Kind], ev) // as the follower does
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read redis log: %w", err)
	}
	return out, nil
}

// MarkHostStale makes the next Snapshot read the host again, however recent its
// last reading (the tick before a save comes due predicts from a fresh one).
func (c *Collector) MarkHostStale() {
	c.mu.Lock()
	c.hostAt = time.Time{}
	c.mu.Unlock()
}

// MarkConfigStale makes the next Snapshot run CONFIG GET again (after the guardian
// changed a setting, so reconciliation sees the new value).
func (c *Collector) MarkConfigStale() { c.opts.Redis.MarkConfigStale() }
