// Package testsys gives tests the real systemd pieces the guardian talks to without
// systemd as PID 1: a systemd-journald to log into and read back, and an sd_notify
// socket to receive READY, STATUS, WATCHDOG and the rest.
package testsys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// JournalSocket is where journald receives native entries.
const JournalSocket = "/run/systemd/journal/socket"

var (
	jdMu      sync.Mutex
	jdStarted *exec.Cmd
)

// Journald makes sure a systemd-journald listens on JournalSocket, starting one if
// none answers (the socket file may be left over from a dead one). Under CI=true a
// journald that cannot be had fails the test; elsewhere it skips with the reason.
func Journald(t testing.TB) {
	t.Helper()
	jdMu.Lock()
	defer jdMu.Unlock()
	if journalAnswers() {
		return
	}
	if err := startJournald(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("systemd-journald is required in CI: %v", err)
		}
		t.Skipf("no systemd-journald: %v", err)
	}
}

func journalAnswers() bool {
	c, err := net.Dial("unixgram", JournalSocket)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func startJournald() error {
	bin := "/lib/systemd/systemd-journald"
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (install the systemd package)", bin, err)
	}
	if err := os.MkdirAll(filepath.Dir(JournalSocket), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(JournalSocket), err)
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !journalAnswers() {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("%s started but %s does not answer within 10s", bin, JournalSocket)
		}
		time.Sleep(20 * time.Millisecond)
	}
	jdStarted = cmd
	return nil
}

// StopJournald stops the journald this package started, if any (call it from
// TestMain): never one that was already running.
func StopJournald() {
	jdMu.Lock()
	defer jdMu.Unlock()
	if jdStarted == nil {
		return
	}
	_ = jdStarted.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = jdStarted.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = jdStarted.Process.Kill()
		<-done
	}
	jdStarted = nil
}

// JournalEntry is one entry as `journalctl -o json` prints it, fields as text.
type JournalEntry map[string]string

// ReadJournal returns the entries matching the journalctl match arguments (e.g.
// "_PID=123", "REDIS_INSTANCE=x"), oldest first.
func ReadJournal(t testing.TB, matches ...string) []JournalEntry {
	t.Helper()
	args := append([]string{"--no-pager", "-o", "json"}, matches...)
	out, err := exec.Command("journalctl", args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("journalctl %s: %v: %s", strings.Join(matches, " "), err, stderr)
	}
	var entries []JournalEntry
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal(line, &raw); err != nil {
			t.Fatalf("journalctl printed a line that is not JSON: %v: %s", err, line)
		}
		e := JournalEntry{}
		for k, v := range raw {
			switch x := v.(type) {
			case string:
				e[k] = x
			default: // binary fields come as byte arrays; tests never need them
				e[k] = fmt.Sprint(x)
			}
		}
		entries = append(entries, e)
	}
	return entries
}

// NotifySocket is a bound sd_notify socket that records every datagram.
type NotifySocket struct {
	Path string
	conn *net.UnixConn

	mu   sync.Mutex
	msgs []Datagram
	cond chan struct{}
}

// Datagram is one notification as received, with its arrival time.
type Datagram struct {
	At     time.Time
	Fields map[string]string
	Raw    string
}

// ListenNotify binds a unixgram socket in a temp dir and records what arrives.
func ListenNotify(t testing.TB) *NotifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("bind notify socket: %v", err)
	}
	n := &NotifySocket{Path: path, conn: conn, cond: make(chan struct{})}
	go n.read()
	t.Cleanup(func() { _ = conn.Close() })
	return n
}

func (n *NotifySocket) read() {
	buf := make([]byte, 64<<10)
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			return
		}
		d := Datagram{At: time.Now(), Raw: string(buf[:k]), Fields: map[string]string{}}
		for _, line := range strings.Split(d.Raw, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				d.Fields[k] = v
			}
		}
		n.mu.Lock()
		n.msgs = append(n.msgs, d)
		close(n.cond)
		n.cond = make(chan struct{})
		n.mu.Unlock()
	}
}

// All returns every datagram so far.
func (n *NotifySocket) All() []Datagram {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Datagram(nil), n.msgs...)
}

// WaitFor waits until a datagram after index from has the field set (to want, or
// to anything when want is "*") and returns its index.
func (n *NotifySocket) WaitFor(t testing.TB, from int, field, want string, timeout time.Duration) int {
	t.Helper()
	deadline := time.After(timeout)
	for {
		n.mu.Lock()
		for i := from; i < len(n.msgs); i++ {
			if v, ok := n.msgs[i].Fields[field]; ok && (want == "*" || v == want) {
				n.mu.Unlock()
				return i
			}
		}
		ch := n.cond
		n.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s=%s notification within %s; got:\n%s", field, want, timeout, n.dump())
			return -1
		}
	}
}

// Count returns how many datagrams at or after from carry field.
func (n *NotifySocket) Count(from int, field string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for i := from; i < len(n.msgs); i++ {
		if _, ok := n.msgs[i].Fields[field]; ok {
			c++
		}
	}
	return c
}

// Len is the number of datagrams so far.
func (n *NotifySocket) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.msgs)
}

func (n *NotifySocket) dump() string {
	var b strings.Builder
	for _, d := range n.All() {
		fmt.Fprintf(&b, "  %s %q\n", d.At.Format("15:04:05.000"), d.Raw)
	}
	return b.String()
}
