package monitor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// keepAlive is go-redis's own TCP keep-alive policy (its default dialer's), kept
// so that replacing the dialer changes nothing but the reply bounds.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}

// boundedDialer is the go-redis Dialer of every client the guardian builds: it
// dials TCP or a unix socket within o.DialTimeout, does the TLS handshake when
// o.TLSConfig is set (go-redis leaves TLS to a custom dialer), and wraps the
// connection so that every reply is checked against the bounds of
// replylimit.go before go-redis reads it. go-redis's default of 5 s stands
// for a DialTimeout of 0.
func boundedDialer(o *redis.Options) func(ctx context.Context, network, addr string) (net.Conn, error) {
	timeout, tlsCfg := o.DialTimeout, o.TLSConfig
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		d := &net.Dialer{KeepAliveConfig: keepAlive}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tlsCfg == nil {
			return guardReplies(conn), nil
		}
		cfg := tlsCfg
		if cfg.ServerName == "" {
			// As tls.Dial does: verify the name the address was given by.
			cfg = cfg.Clone()
			cfg.ServerName = addr
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
		}
		return guardReplies(tc), nil
	}
}

// guardReplies wraps conn so its Read returns a *ReplyError instead of the
// bytes of a reply that breaks the bounds. A plain socket keeps its
// syscall.Conn: go-redis's pool peeks at it to find connections the server
// closed while idle, which saves a failed command after a Redis restart.
func guardReplies(conn net.Conn) net.Conn {
	g := &guardedConn{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		return &guardedSysConn{guardedConn: g, sys: sc}
	}
	return g
}

// guardedConn validates every byte read from its connection. go-redis reads a
// connection from one goroutine at a time, so the validator needs no lock.
type guardedConn struct {
	net.Conn
	v replyValidator
}

// Read reads from the connection and checks what came. Bytes that break the
// bounds are never returned: go-redis gets the error instead, fails the
// command and drops the connection.
func (c *guardedConn) Read(p []byte) (int, error) {
	if c.v.err != nil {
		return 0, c.v.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if verr := c.v.Feed(p[:n]); verr != nil {
			return 0, verr
		}
	}
	return n, err
}

// guardedSysConn is a guardedConn over a plain socket.
type guardedSysConn struct {
	*guardedConn
	sys syscall.Conn
}

// SyscallConn exposes the socket for go-redis's idle-connection check, which
// only peeks (MSG_PEEK) and so never takes bytes past the validator.
func (c *guardedSysConn) SyscallConn() (syscall.RawConn, error) { return c.sys.SyscallConn() }

// MaxErrorText bounds the text of an error that reaches the logs, the findings
// and `check`'s output: a Redis error reply may be as long as a line may be
// (MaxLineLen), and a peer that is not Redis may fill it.
const MaxErrorText = 512

// BoundError returns err with its text cut to MaxErrorText bytes and marked
// "... (N bytes)"; errors.Is and errors.As still see err. A short error is
// returned as it is, and so is one bounded already (the hook below bounds every
// command's error, and callers bound again what they log).
func BoundError(err error) error {
	if err == nil || isBounded(err) || len(err.Error()) <= MaxErrorText {
		return err
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return boundedRedisError{boundedError{err}}
	}
	return boundedError{err}
}

// boundedError is an error whose text is cut to MaxErrorText bytes.
type boundedError struct{ err error }

func (e boundedError) Error() string {
	s := e.err.Error()
	cut := MaxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:cut], len(s))
}

func (e boundedError) Unwrap() error { return e.err }

// boundedRedisError is a bounded error reply of Redis: it stays a redis.Error
// for code that asserts the type instead of using errors.As.
type boundedRedisError struct{ boundedError }

// RedisError marks the error as Redis's reply (redis.Error).
func (boundedRedisError) RedisError() {}

// boundErrors is a go-redis hook that bounds the error of every command
// (BoundError), so no caller can log a megabyte of a peer's error reply.
type boundErrors struct{}

func (boundErrors) DialHook(next redis.DialHook) redis.DialHook { return next }

func (boundErrors) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if b := BoundError(err); isBounded(b) {
			cmd.SetErr(b)
			return b
		}
		return err
	}
}

func (boundErrors) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if b := BoundError(c.Err()); isBounded(b) {
				c.SetErr(b)
			}
		}
		return BoundError(err)
	}
}

// isBounded reports whether BoundError cut err (error values are not always
// comparable, so this asks the type).
func isBounded(err error) bool {
	switch err.(type) {
	case boundedError, boundedRedisError:
		return true
	}
	return false
}
