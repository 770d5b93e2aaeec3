package monitor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
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

// replyHook is the go-redis hook of every client the guardian builds. It bounds
// the error of every command (BoundError), so no caller can log a megabyte of a
// peer's error reply, and it refuses a CONFIG GET reply that names a setting not
// asked for (CheckConfigReply), for every caller: the source and the remedies'
// read-backs alike. configCommand is CONFIG's name on this server.
type replyHook struct{ configCommand string }

func (replyHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h replyHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil {
			if err = h.checkConfigGet(cmd); err != nil {
				cmd.SetErr(err)
				return err
			}
		}
		if b := BoundError(err); isBounded(b) {
			cmd.SetErr(b)
			return b
		}
		return err
	}
}

func (h replyHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if c.Err() == nil {
				if cerr := h.checkConfigGet(c); cerr != nil {
					c.SetErr(cerr)
					if err == nil {
						err = cerr
					}
				}
			}
			if b := BoundError(c.Err()); isBounded(b) {
				c.SetErr(b)
			}
		}
		return BoundError(err)
	}
}

// checkConfigGet checks the reply of a CONFIG GET of exact names; other
// commands, and patterns, pass.
func (h replyHook) checkConfigGet(cmd redis.Cmder) error {
	args := cmd.Args()
	if len(args) < 3 {
		return nil
	}
	name, _ := args[0].(string)
	sub, _ := args[1].(string)
	c, ok := cmd.(*redis.Cmd)
	if !ok || !strings.EqualFold(name, h.configCommand) || !strings.EqualFold(sub, "GET") {
		return nil
	}
	asked := make([]string, 0, len(args)-2)
	for _, a := range args[2:] {
		s, ok := a.(string)
		if !ok || strings.ContainsAny(s, "*?[") {
			return nil
		}
		asked = append(asked, s)
	}
	kv, err := c.StringSlice()
	if err != nil {
		return nil // not a list of strings: the caller's own read fails on it
	}
	_, err = CheckConfigReply(asked, kv)
	return err
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
