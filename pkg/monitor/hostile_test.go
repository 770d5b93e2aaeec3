package monitor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// hostileReplies are what the review's squatter on Redis's port answered, and
// what it would take to make the guardian allocate gigabytes or panic.
var hostileReplies = []struct{ name, reply, header, reason string }{
	{"bulk of 2 GiB", "$2147483647\r\n", "$2147483647", "bulk length over"},
	{"bulk of MaxInt64", "$9223372036854775807\r\n", "$9223372036854775807", "bulk length over"},
	{"array of 2^31", "*2147483647\r\n", "*2147483647", "aggregate length over"},
	{"map of 2^31", "%2147483647\r\n", "%2147483647", "aggregate length over"},
	{"error line of 1 MiB", "-ERR " + strings.Repeat("x", 1<<20) + "\r\n", "-ERR xxx", "line longer than"},
	{"nested a million deep", strings.Repeat("*1\r\n", 1<<20), "*1", "nested deeper"},
}

// hostileCase is a hostile reply and how the peer answers the connection's
// HELLO: with the same bytes, or refused as Redis 5 does (go-redis then reads
// the next reply, INFO's, with nothing but the bounds in the way).
type hostileCase struct {
	name, header, reason string
	answer               func(args []string) string
}

func hostileCases() []hostileCase {
	var out []hostileCase
	for _, r := range hostileReplies {
		out = append(out,
			hostileCase{name: r.name + " to everything", header: r.header, reason: r.reason,
				answer: func([]string) string { return r.reply }},
			hostileCase{name: r.name + " after HELLO", header: r.header, reason: r.reason,
				answer: func(args []string) string {
					if strings.EqualFold(args[0], "HELLO") {
						return "-ERR unknown command 'HELLO'\r\n"
					}
					return r.reply
				}})
	}
	return out
}

// openSource builds the guardian's client and source for addr, as the product does.
func openSource(t *testing.T, o monitor.RedisOptions) *monitor.RedisSource {
	t.Helper()
	if o.DialTimeout == 0 {
		o.DialTimeout, o.CommandTimeout = 2*time.Second, 2*time.Second
	}
	o.ConfigRefresh, o.InfoRefresh = time.Hour, time.Hour
	client, err := monitor.NewRedisClient(o)
	if err != nil {
		t.Fatalf("NewRedisClient: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return monitor.NewRedisSource(client, o)
}

// TestRedisSourceHostileReplies: a peer that announces a reply of gigabytes (or
// of a million nested arrays) makes a tick fail with an error that names the
// header, and the finding redis_reply_invalid; nothing panics and nothing near
// the announced size is allocated. Before the bounds, these replies made go-redis
// allocate 2 GiB, panic ("makeslice: len out of range") or die out of memory.
// Not parallel: it measures the allocations of the whole process.
func TestRedisSourceHostileReplies(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			fake := testredis.StartFake(t, c.answer)
			src := openSource(t, monitor.RedisOptions{Addr: fake.Addr})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			rd := src.Read(context.Background(), time.Now())
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("the tick allocated %d MiB", grew>>20)
			}
			if fake.Commands() == 0 {
				t.Fatal("the fake was never asked: the test tested nothing")
			}
			if rd.Err == nil {
				t.Fatal("the tick succeeded")
			}
			var re *monitor.ReplyError
			if !errors.Is(rd.Err, monitor.ErrInvalidReply) || !errors.As(rd.Err, &re) || rd.ErrKind != monitor.ErrReplyInvalid {
				t.Fatalf("error %v (kind %q), want a *ReplyError of kind %q", rd.Err, rd.ErrKind, monitor.ErrReplyInvalid)
			}
			if !strings.HasPrefix(re.Header, c.header) || !strings.Contains(re.Reason, c.reason) || len(rd.Err.Error()) > 200 {
				t.Errorf("error %q, want it to name %q and %q in under 200 bytes", rd.Err, c.header, c.reason)
			}
			fs := policy.Diagnose(monitor.Snapshot{Instance: "hostile", Time: time.Now(), Redis: rd}, policy.History{}, policy.DefaultThresholds(), nil)
			if len(fs) != 1 || fs[0].ID != policy.IDRedisReplyInvalid || fs[0].Severity != policy.Critical || !strings.Contains(fs[0].Cause, c.header) {
				t.Errorf("findings %+v, want one critical %s naming %q", fs, policy.IDRedisReplyInvalid, c.header)
			}
			// The connection was dropped: the next tick dials again and fails
			// the same way.
			again := src.Read(context.Background(), time.Now())
			if !errors.Is(again.Err, monitor.ErrInvalidReply) || fake.Conns() < 2 {
				t.Errorf("second tick: %v after %d connections, want the same refusal on a new connection", again.Err, fake.Conns())
			}
		})
	}
}

// infoFixture is a real server's INFO, framed as a bulk reply.
func infoFixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "info-redis-7.0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("$%d\r\n%s\r\n", len(b), b)
}

// TestRedisSourceLongErrorBounded: an error reply under the line bound but long
// reaches the findings cut to monitor.MaxErrorText, still a Redis error.
func TestRedisSourceLongErrorBounded(t *testing.T) {
	t.Parallel()
	long := "ERR " + strings.Repeat("é", 4000)
	fake := testredis.StartFake(t, func([]string) string { return "-" + long + "\r\n" })
	src := openSource(t, monitor.RedisOptions{Addr: fake.Addr})
	rd := src.Read(context.Background(), time.Now())
	var rerr redis.Error
	if rd.Err == nil || !errors.As(rd.Err, &rerr) || rd.ErrKind != monitor.ErrOther {
		t.Fatalf("error %v (kind %q), want Redis's error reply", rd.Err, rd.ErrKind)
	}
	msg := rd.Err.Error()
	if len(msg) > monitor.MaxErrorText+64 || !strings.Contains(msg, fmt.Sprintf("... (%d bytes)", len(long))) || !strings.HasPrefix(msg, "INFO: ERR éé") {
		t.Errorf("error text of %d bytes: %.700q; want it cut to %d with the full length named", len(msg), msg, monitor.MaxErrorText)
	}
	if !strings.Contains(msg, "é...") {
		t.Errorf("error text cut inside a character: %.700q", msg)
	}
	fs := policy.Diagnose(monitor.Snapshot{Time: time.Now(), Redis: rd}, policy.History{}, policy.DefaultThresholds(), nil)
	if len(fs) != 1 || len(fs[0].Cause) > monitor.MaxErrorText+64 {
		t.Errorf("findings %+v, want one with a bounded cause", fs)
	}
}

// TestConfigGetAnswersWhatWasAsked: a CONFIG GET reply naming a setting that was
// not asked for (or one twice) is refused, in the multi-parameter form of 7.0+
// and in the one-parameter pipeline of older servers, and nothing of it is
// trusted.
func TestConfigGetAnswersWhatWasAsked(t *testing.T) {
	t.Parallel()
	info := infoFixture(t)
	pair := func(k, v string) string { return fmt.Sprintf("$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v) }
	for _, c := range []struct {
		name   string
		multi  bool
		answer string // the CONFIG GET reply: for the pipeline, the one to "dir"
		want   string
	}{
		{name: "7.0+: a setting not asked for", multi: true, answer: "*4\r\n" + pair("dir", "/var/lib/redis") + pair("masterauth", "x"), want: `"masterauth", which was not asked for`},
		{name: "7.0+: a setting twice", multi: true, answer: "*4\r\n" + pair("dir", "/var/lib/redis") + pair("dir", "/tmp"), want: `"dir" twice`},
		{name: "7.0+: unpaired", multi: true, answer: "*3\r\n" + pair("dir", "/var/lib/redis") + "$1\r\nx\r\n", want: "3 elements"},
		{name: "before 7.0: another setting", answer: "*2\r\n" + pair("dbfilename", "evil.rdb"), want: `"dbfilename", which was not asked for`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fake := testredis.StartFake(t, func(args []string) string {
				switch {
				case strings.EqualFold(args[0], "HELLO"):
					return "-ERR unknown command 'HELLO'\r\n" // as Redis 5 answers
				case strings.EqualFold(args[0], "INFO"):
					return info
				case len(args) > 3 && !c.multi:
					return "-ERR wrong number of arguments for 'config|get' command\r\n"
				case len(args) == 3 && args[2] != "dir":
					return "*0\r\n"
				}
				return c.answer
			})
			src := openSource(t, monitor.RedisOptions{Addr: fake.Addr, ConfigParams: []string{"dir", "dbfilename", "save"}})
			rd := src.Read(context.Background(), time.Now())
			if rd.Err != nil {
				t.Fatalf("INFO: %v", rd.Err)
			}
			if !errors.Is(rd.ConfigErr, monitor.ErrInvalidReply) || rd.ConfigErrKind != monitor.ErrReplyInvalid || !strings.Contains(rd.ConfigErr.Error(), c.want) {
				t.Errorf("CONFIG GET error %v (kind %q), want %q of kind %q", rd.ConfigErr, rd.ConfigErrKind, c.want, monitor.ErrReplyInvalid)
			}
			if rd.Config.Known() {
				t.Errorf("settings %v trusted from a reply that did not answer the question", rd.Config)
			}
			fs := policy.Diagnose(monitor.Snapshot{Time: time.Now(), Redis: rd}, policy.History{}, policy.DefaultThresholds(), nil)
			if !slicesContainsID(fs, policy.IDRedisReplyInvalid) {
				t.Errorf("findings %+v, want %s", fs, policy.IDRedisReplyInvalid)
			}
		})
	}
}

func slicesContainsID(fs []policy.Finding, id string) bool {
	for _, f := range fs {
		if f.ID == id {
			return true
		}
	}
	return false
}

// selfSigned makes a CA-less certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestDialerTLS: with the guardian's own dialer, TLS still works (the server's
// name is verified against the address), a server the CA does not vouch for is
// refused at the handshake, and the bounds apply to what comes out of TLS.
func TestDialerTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	info := infoFixture(t)
	good := testredis.StartFakeTLS(t, srvCfg, func(args []string) string {
		switch strings.ToUpper(args[0]) {
		case "HELLO":
			return "-ERR unknown command 'HELLO'\r\n"
		case "INFO":
			return info
		}
		return "*2\r\n$3\r\ndir\r\n$14\r\n/var/lib/redis\r\n"
	})
	hostile := testredis.StartFakeTLS(t, srvCfg, func([]string) string { return "$2147483647\r\n" })

	t.Run("verified", func(t *testing.T) {
		t.Parallel()
		src := openSource(t, monitor.RedisOptions{Addr: good.Addr, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
		rd := src.Read(context.Background(), time.Now())
		if rd.Err != nil || rd.Info.Version == "" || rd.ConfigErr != nil || rd.Config["dir"] != "/var/lib/redis" {
			t.Fatalf("read over TLS: err %v, version %q, config %v (%v)", rd.Err, rd.Info.Version, rd.Config, rd.ConfigErr)
		}
	})
	t.Run("rediss URL", func(t *testing.T) {
		t.Parallel()
		// ParseURL's TLS config carries the host as ServerName; the CA is
		// unknown to the system pool, so the handshake must fail on it.
		src := openSource(t, monitor.RedisOptions{Addr: "rediss://" + good.Addr})
		rd := src.Read(context.Background(), time.Now())
		var uerr x509.UnknownAuthorityError
		if !errors.As(rd.Err, &uerr) || rd.ErrKind != monitor.ErrUnreachable {
			t.Fatalf("error %v (kind %q), want the unknown authority at the handshake", rd.Err, rd.ErrKind)
		}
	})
	t.Run("wrong name", func(t *testing.T) {
		t.Parallel()
		src := openSource(t, monitor.RedisOptions{Addr: good.Addr, TLS: &tls.Config{RootCAs: pool, ServerName: "redis.example", MinVersion: tls.VersionTLS12}})
		rd := src.Read(context.Background(), time.Now())
		var herr x509.HostnameError
		if !errors.As(rd.Err, &herr) {
			t.Fatalf("error %v, want the name mismatch", rd.Err)
		}
	})
	t.Run("bounded inside TLS", func(t *testing.T) {
		t.Parallel()
		src := openSource(t, monitor.RedisOptions{Addr: hostile.Addr, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
		rd := src.Read(context.Background(), time.Now())
		if !errors.Is(rd.Err, monitor.ErrInvalidReply) || rd.ErrKind != monitor.ErrReplyInvalid {
			t.Fatalf("error %v (kind %q), want the reply refused", rd.Err, rd.ErrKind)
		}
	})
}

// TestDialerTimeout: a TLS server that accepts and never answers the handshake
// fails the read within the dial timeout.
func TestDialerTimeout(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	src := openSource(t, monitor.RedisOptions{Addr: l.Addr().String(), TLS: &tls.Config{MinVersion: tls.VersionTLS12},
		DialTimeout: 300 * time.Millisecond, CommandTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	rd := src.Read(ctx, time.Now())
	if rd.Err == nil || !errors.Is(rd.Err, context.DeadlineExceeded) && !strings.Contains(rd.Err.Error(), "timeout") {
		t.Fatalf("error %v, want the dial timeout", rd.Err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the handshake hung for %s with a dial timeout of 300ms", took)
	}
}

// TestConfigGetCheckedForEveryCaller: the client itself refuses a CONFIG GET
// reply that names another setting, so the remedies' read-back of one setting
// (which takes the reply's second element as the value) never trusts it either,
// with CONFIG renamed too.
func TestConfigGetCheckedForEveryCaller(t *testing.T) {
	t.Parallel()
	fake := testredis.StartFake(t, func(args []string) string {
		if len(args) < 3 || !strings.EqualFold(args[1], "GET") {
			return "-ERR unknown command\r\n"
		}
		switch args[2] {
		case "stop-writes-on-bgsave-error":
			return "*2\r\n$4\r\nsave\r\n$2\r\nno\r\n" // another setting's name
		case "appendonly":
			return "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n"
		}
		return "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n" // a pattern's answer
	})
	client, err := monitor.NewRedisClient(monitor.RedisOptions{Addr: fake.Addr, ConfigCommand: "CFG-renamed", DialTimeout: 2 * time.Second, CommandTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()
	kv, err := client.Do(ctx, "CFG-renamed", "GET", "stop-writes-on-bgsave-error").StringSlice()
	if !errors.Is(err, monitor.ErrInvalidReply) || monitor.ClassifyError(err) != monitor.ErrReplyInvalid || !strings.Contains(err.Error(), `"save", which was not asked for`) {
		t.Errorf("CONFIG GET answered with another setting: %q, %v; want it refused", kv, err)
	}
	pipe := client.Pipeline()
	bad := pipe.Do(ctx, "CFG-renamed", "GET", "stop-writes-on-bgsave-error")
	good := pipe.Do(ctx, "CFG-renamed", "GET", "appendonly")
	_, _ = pipe.Exec(ctx)
	if !errors.Is(bad.Err(), monitor.ErrInvalidReply) {
		t.Errorf("pipelined CONFIG GET answered with another setting: %v; want it refused", bad.Err())
	}
	if kv, err := good.StringSlice(); err != nil || len(kv) != 2 || kv[1] != "yes" {
		t.Errorf("pipelined CONFIG GET appendonly: %q, %v", kv, err)
	}
	if kv, err := client.Do(ctx, "CFG-renamed", "GET", "appendonly").StringSlice(); err != nil || len(kv) != 2 || kv[1] != "yes" {
		t.Errorf("CONFIG GET appendonly: %q, %v", kv, err)
	}
	if kv, err := client.Do(ctx, "CFG-renamed", "GET", "*").StringSlice(); err != nil || len(kv) != 4 {
		t.Errorf("CONFIG GET of a pattern: %q, %v; want it passed as it is", kv, err)
	}
}
