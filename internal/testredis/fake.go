package testredis

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Fake is a TCP server on loopback that speaks just enough RESP to stand where a
// Redis should be and answer what a test scripts: a peer squatting Redis's port,
// a man in the middle. It reads each command (an array of bulk strings, as
// go-redis sends) and writes what Answer returns for it, raw.
type Fake struct {
	Addr     string
	commands atomic.Int64
	conns    atomic.Int64
}

// Commands is how many commands the fake has read.
func (f *Fake) Commands() int64 { return f.commands.Load() }

// Conns is how many connections the fake has accepted.
func (f *Fake) Conns() int64 { return f.conns.Load() }

// StartFake serves answer on 127.0.0.1 until the test ends. answer gets the
// command's arguments (the name as sent) and returns the raw bytes to write.
// Connections stay open after an answer, as a peer that announced more bytes
// than it sends would keep them.
func StartFake(t testing.TB, answer func(args []string) string) *Fake {
	t.Helper()
	return StartFakeTLS(t, nil, answer)
}

// StartFakeTLS is StartFake behind TLS with cfg; a nil cfg serves plain TCP.
func StartFakeTLS(t testing.TB, cfg *tls.Config, answer func(args []string) string) *Fake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake redis: listen: %v", err)
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	f := &Fake{Addr: l.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = c.Close() }()
				rd := bufio.NewReader(c)
				for {
					args, err := readCommand(rd)
					if err != nil {
						return
					}
					f.commands.Add(1)
					if _, err := io.WriteString(c, answer(args)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return f
}

// readCommand reads one RESP array of bulk strings.
func readCommand(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil || n < 0 || n > 1024 {
		return nil, io.ErrUnexpectedEOF
	}
	args := make([]string, 0, n)
	for range n {
		h, err := rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(h, "$")))
		if err != nil || size < 0 || size > 1<<20 {
			return nil, io.ErrUnexpectedEOF
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		args = append(args, string(b[:size]))
	}
	return args, nil
}
