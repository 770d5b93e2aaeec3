package monitor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions says how to reach one Redis.
type RedisOptions struct {
	// Addr is host:port, an absolute unix socket path, or a redis://, rediss:// or
	// unix:// URL.
	Addr     string
	Username string
	// Password is used when PasswordFile is empty.
	Password string
	// PasswordFile is read at every (re)connect, so a rotated secret is picked up
	// without restarting the guardian.
	PasswordFile string
	TLS          *tls.Config
	// DialTimeout and CommandTimeout bound every call, so a dead or slow Redis can
	// never hold up a tick for longer than its deadline.
	DialTimeout    time.Duration
	CommandTimeout time.Duration
	// ConfigRefresh is how often CONFIG GET runs; the settings rarely change, and
	// INFO alone is one round trip per tick.
	ConfigRefresh time.Duration
	// InfoRefresh is how often a tick asks for every INFO section the guardian
	// uses; the ticks between ask for persistence only (and replication on a
	// replica or a master with replicas): what can change between two ticks and
	// decides a remedy. A new connection (Redis restarted) or a failed read makes
	// the next tick a full one. 0 asks for every section at every tick.
	InfoRefresh time.Duration
	// ConfigCommand is the name CONFIG was renamed to with rename-command, if any.
	ConfigCommand string
	// ConfigParams are the settings CONFIG GET fetches; nil means ConfigParams.
	// The guardian passes policy.ConfigParams(), which adds every setting a remedy
	// may hold, so a held setting is always reconciled against its live value.
	ConfigParams []string
}

// NewRedisClient builds a go-redis client from options. It does not connect.
func NewRedisClient(o RedisOptions) (*redis.Client, error) {
	opts, err := clientOptions(o.Addr)
	if err != nil {
		return nil, err
	}
	if o.Username != "" {
		opts.Username = o.Username
	}
	if o.Password != "" {
		opts.Password = o.Password
	}
	if o.PasswordFile != "" {
		file, user := o.PasswordFile, opts.Username
		opts.CredentialsProviderContext = func(context.Context) (string, string, error) {
			b, err := readSecretFile(file)
			if err != nil {
				return "", "", fmt.Errorf("read password_file: %w", err)
			}
			return user, strings.TrimRight(string(b), "\r\n"), nil
		}
	}
	if o.TLS != nil {
		opts.TLSConfig = o.TLS
	}
	// RESP2 and no CLIENT SETINFO: works on every version from 6.0 on and keeps the
	// connection handshake to one AUTH at most.
	opts.Protocol = 2
	opts.DisableIdentity = true
	opts.DialTimeout = o.DialTimeout
	opts.ReadTimeout = o.CommandTimeout
	opts.WriteTimeout = o.CommandTimeout
	opts.ContextTimeoutEnabled = true
	// The guardian retries on its own schedule (the next tick); a library retry
	// would only hide an outage and stretch the tick.
	opts.MaxRetries = -1
	opts.PoolSize = 2
	opts.MinIdleConns = 0
	// Every reply is bounded before go-redis allocates for it (replylimit.go),
	// every error text before anyone logs it, and a CONFIG GET reply must
	// answer what was asked (replyHook).
	opts.Dialer = boundedDialer(opts)
	c := redis.NewClient(opts)
	cfgCmd := o.ConfigCommand
	if cfgCmd == "" {
		cfgCmd = "CONFIG"
	}
	c.AddHook(replyHook{configCommand: cfgCmd})
	return c, nil
}

// clientOptions turns an address in any accepted form into go-redis options.
func clientOptions(addr string) (*redis.Options, error) {
	switch {
	case addr == "":
		return nil, errors.New("empty address")
	case strings.HasPrefix(addr, "redis://"), strings.HasPrefix(addr, "rediss://"), strings.HasPrefix(addr, "unix://"):
		o, err := redis.ParseURL(addr)
		if err != nil {
			return nil, fmt.Errorf("parse address URL: %w", err)
		}
		return o, nil
	case strings.HasPrefix(addr, "/"):
		return &redis.Options{Network: "unix", Addr: addr}, nil
	default:
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("address %q is not host:port, a unix socket path or a redis:// URL: %w", addr, err)
		}
		return &redis.Options{Network: "tcp", Addr: addr}, nil
	}
}

// CheckAddr validates an address the way the client will read it.
func CheckAddr(addr string) error {
	o, err := clientOptions(addr)
	if err != nil {
		return err
	}
	if o.Network != "unix" {
		host, port, err := net.SplitHostPort(o.Addr)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("the URL names no host:port")
		}
	}
	return nil
}

// IsLocalAddr reports whether an address points at this host (unix socket or
// loopback), the precondition for host readings.
func IsLocalAddr(addr string) bool {
	o, err := clientOptions(addr)
	if err != nil {
		return false
	}
	if o.Network == "unix" {
		return true
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RedisSource reads one Redis: INFO every tick, CONFIG GET now and then.
type RedisSource struct {
	client *redis.Client
	opts   RedisOptions

	mu         sync.Mutex
	infoArgs   []any // multi-section INFO on 7.0+, "INFO" alone on older servers
	multiGet   bool  // CONFIG GET with many parameters (7.0+)
	config     RedisConfig
	configTime time.Time
	configErr  error
	configKind ErrKind
	stale      bool
	runID      string

	// The last reading of every section, which a light tick's sections update.
	last     Info
	infoTime time.Time
	// memTime is when the memory section was last read.
	memTime time.Time
	// fullStale makes the next tick a full one: a new connection or a failed read.
	fullStale bool
	// clientList is the last CLIENT LIST (clients.go).
	clientList clientsCache
}

// lightSections are what a light tick asks for (7.0+); with replication on a
// replica or a master with replicas.
var (
	lightSections            = []any{"INFO", "persistence"}
	lightSectionsReplication = []any{"INFO", "persistence", "replication"}
)

// infoSections are the sections one INFO call asks for on 7.0+. commandstats and
// latencystats are left out: they are large and the guardian does not need them.
var infoSections = []any{"INFO", "server", "memory", "persistence", "stats", "replication", "keyspace", "errorstats"}

// NewRedisSource builds a source; it does not connect until the first Read.
func NewRedisSource(client *redis.Client, opts RedisOptions) *RedisSource {
	if opts.ConfigCommand == "" {
		opts.ConfigCommand = "CONFIG"
	}
	r := &RedisSource{client: client, opts: opts, infoArgs: infoSections, multiGet: true, stale: true, fullStale: true}
	// A new connection may be a restarted Redis (new pid, run_id, role): read
	// every section at the next tick. Set before the client's first use.
	if o := client.Options(); o != nil {
		prev := o.OnConnect
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			r.mu.Lock()
			r.fullStale = true
			r.mu.Unlock()
			if prev != nil {
				return prev(ctx, cn)
			}
			return nil
		}
	}
	return r
}

// Client exposes the connection for pkg/remediate, so both share one pool.
func (r *RedisSource) Client() *redis.Client { return r.client }

// MarkConfigStale makes the next Read refresh CONFIG, e.g. after the guardian
// changed a setting itself.
func (r *RedisSource) MarkConfigStale() {
	r.mu.Lock()
	r.stale = true
	r.mu.Unlock()
}

// MarkInfoStale makes the next Read ask for every INFO section, however recent
// the last full one (a one-shot check's second reading compares counters of
// sections a light read leaves out).
func (r *RedisSource) MarkInfoStale() {
	r.mu.Lock()
	r.fullStale = true
	r.mu.Unlock()
}

// Read performs one tick's worth of reading: one INFO round trip, plus CONFIG GET
// when the cached settings are stale, and CLIENT LIST when client buffers fill
// memory (see RedisReading.Clients).
func (r *RedisSource) Read(ctx context.Context, now time.Time) RedisReading {
	start := time.Now()
	raw, full, mem, err := r.info(ctx, now)
	rd := RedisReading{Latency: time.Since(start)}
	if err != nil {
		rd.Err = fmt.Errorf("INFO: %w", BoundError(err))
		rd.ErrKind = ClassifyError(err)
		r.mu.Lock()
		r.fullStale = true
		rd.Config, rd.ConfigTime, rd.ConfigErr, rd.ConfigErrKind = r.config, r.configTime, r.configErr, r.configKind
		r.mu.Unlock()
		return rd
	}
	r.mu.Lock()
	if full {
		r.last = ParseInfo(raw)
		r.infoTime = now
	} else {
		r.last.Merge(raw)
	}
	if mem {
		r.memTime = now
	}
	rd.Info, rd.InfoTime, rd.InfoFull, rd.MemoryTime = r.last, r.infoTime, full, r.memTime
	r.mu.Unlock()
	rd.Clients, rd.ClientsTime, rd.ClientsErr = r.clients(ctx, now, rd.Info, mem)

	r.mu.Lock()
	refresh := r.stale || r.configTime.IsZero() || now.Sub(r.configTime) >= r.opts.ConfigRefresh ||
		(rd.Info.RunID != "" && rd.Info.RunID != r.runID)
	r.mu.Unlock()
	if refresh {
		cfg, err := r.configGet(ctx)
		r.mu.Lock()
		r.runID = rd.Info.RunID
		r.configTime = now
		r.stale = false
		if err != nil {
			r.configErr = fmt.Errorf("%s GET: %w", r.opts.ConfigCommand, BoundError(err))
			r.configKind = ClassifyError(err)
		} else {
			r.config, r.configErr, r.configKind = cfg, nil, ErrNone
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	rd.Config, rd.ConfigTime, rd.ConfigErr, rd.ConfigErrKind = r.config, r.configTime, r.configErr, r.configKind
	r.mu.Unlock()
	return rd
}

// info runs this tick's INFO: every section when a full read is due, else the
// light sections, with memory when the last reading says so (MemoryWatched). full says which; mem says the memory section was read.
func (r *RedisSource) info(ctx context.Context, now time.Time) (raw string, full, mem bool, err error) {
	r.mu.Lock()
	args := r.infoArgs
	full = r.opts.InfoRefresh <= 0 || r.fullStale || r.infoTime.IsZero() || now.Sub(r.infoTime) >= r.opts.InfoRefresh
	if !full {
		replication := r.last.Role == "slave" || r.last.ConnectedReplicas > 0
		switch {
		case len(args) > 1 && replication:
			args = lightSectionsReplication
		case len(args) > 1 || !replication:
			// Before 7.0 INFO takes one section: persistence alone still works.
			args = lightSections
		default:
			full = true // a replica before 7.0: its role needs a second section
		}
		if !full && len(args) > 1 && MemoryWatched(r.last) {
			args = append(slices.Clip(args), "memory")
			mem = true
		}
	}
	r.mu.Unlock()
	s, err := r.client.Do(ctx, args...).Text()
	if err != nil && len(args) > 2 && isArgsError(err) {
		// Redis before 7.0 takes one section only; plain INFO has all we need but
		// errorstats, which those versions then do not report.
		r.mu.Lock()
		r.infoArgs = []any{"INFO"}
		r.mu.Unlock()
		s, err = r.client.Do(ctx, "INFO").Text()
		full = true
	}
	mem = mem || full
	if full && err == nil {
		// Cleared after the read: the connection it may have opened is the one
		// this full read used.
		r.mu.Lock()
		r.fullStale = false
		r.mu.Unlock()
	}
	return s, full, mem, err
}

// MemoryWatched reports whether the memory section belongs in light reads:
// Redis has a maxmemory (or client buffers are large, ClientBuffersLarge), so
// used_memory and the client buffers are read at every tick, not at the next
// full read (info_refresh, 10 s by default), and client_guard, oom_relief and
// the memory findings act within a tick of a runaway client or a growing
// dataset: measured at maxmemory 200mb, a runaway MONITOR on an idle instance
// was killed 9 s in when memory waited for the full read, and Redis rejected
// 25 000 writes meanwhile. The section costs Redis's main thread about 2 µs a
// tick (INFO persistence 1.09 µs a call, with memory 3.26 µs, Redis 7.0).
// Without maxmemory the light read stays persistence only: no write is
// rejected for memory there before the host runs out.
func MemoryWatched(in Info) bool {
	return in.MaxMemory > 0 || ClientBuffersLarge(in)
}

func (r *RedisSource) configGet(ctx context.Context) (RedisConfig, error) {
	params := r.opts.ConfigParams
	if params == nil {
		params = ConfigParams
	}
	r.mu.Lock()
	multi := r.multiGet
	r.mu.Unlock()
	if multi {
		args := append([]any{r.opts.ConfigCommand, "GET"}, stringsToAny(params)...)
		kv, err := r.client.Do(ctx, args...).StringSlice()
		if err == nil {
			return CheckConfigReply(params, kv)
		}
		if !isArgsError(err) {
			return nil, err
		}
		r.mu.Lock()
		r.multiGet = false
		r.mu.Unlock()
	}
	// Before 7.0 CONFIG GET takes one pattern: pipeline them into one round trip.
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, len(params))
	for i, p := range params {
		cmds[i] = pipe.Do(ctx, r.opts.ConfigCommand, "GET", p)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isRedisReplyError(err) {
		return nil, err
	}
	cfg := RedisConfig{}
	for i, c := range cmds {
		kv, err := c.StringSlice()
		if err != nil {
			return nil, err
		}
		one, err := CheckConfigReply(params[i:i+1], kv)
		if err != nil {
			return nil, err
		}
		maps.Copy(cfg, one)
	}
	return cfg, nil
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// ClassifyError sorts an error from Redis into the kinds the policy tells apart.
func ClassifyError(err error) ErrKind {
	if err == nil {
		return ErrNone
	}
	if errors.Is(err, ErrInvalidReply) {
		return ErrReplyInvalid
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"),
		strings.Contains(msg, "invalid password"), strings.Contains(msg, "invalid username-password"),
		strings.Contains(msg, "without any password configured"), strings.Contains(msg, "read password_file"):
		return ErrAuth
	case strings.HasPrefix(msg, "NOPERM"), strings.Contains(msg, "NOPERM "),
		strings.Contains(msg, "unknown command"), strings.Contains(msg, "unknown subcommand"):
		return ErrCommandUnavailable
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return ErrOther
	}
	return ErrUnreachable
}

// isArgsError reports the reply older servers give to the 7.0+ multi-argument
// forms of INFO and CONFIG GET.
func isArgsError(err error) bool {
	m := err.Error()
	return strings.Contains(m, "syntax error") || strings.Contains(m, "wrong number of arguments")
}

func isRedisReplyError(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr)
}

// RedactAddr hides a password in a redis:// URL, so addresses can be logged.
func RedactAddr(addr string) string {
	i := strings.Index(addr, "://")
	if i < 0 {
		return addr
	}
	at := strings.LastIndex(addr, "@")
	if at < i {
		return addr
	}
	cred := addr[i+3 : at]
	if user, _, ok := strings.Cut(cred, ":"); ok {
		return addr[:i+3] + user + ":xxxxx" + addr[at:]
	}
	return addr
}
