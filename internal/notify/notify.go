// Package notify speaks the sd_notify protocol to systemd: READY, STATUS,
// RELOADING, STOPPING and the watchdog. The socket path and watchdog settings come
// from an injected environment lookup rather than the process environment, so the
// daemon can be run in-process by tests against their own socket.
package notify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends state datagrams to $NOTIFY_SOCKET. The zero value (and a nil
// *Notifier) does nothing, which is what running outside systemd needs.
type Notifier struct {
	mu   sync.Mutex
	addr *net.UnixAddr
	// watchdog is WATCHDOG_USEC when it is meant for this process, else 0.
	watchdog time.Duration
}

// New reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through getenv. A missing
// socket yields a Notifier that does nothing; a malformed watchdog setting is an
// error, never a silently disabled watchdog.
func New(getenv func(string) string) (*Notifier, error) {
	n := &Notifier{}
	if path := getenv("NOTIFY_SOCKET"); path != "" {
		if path[0] != '/' && path[0] != '@' {
			return nil, fmt.Errorf("NOTIFY_SOCKET=%q: not an absolute path or abstract socket", path)
		}
		n.addr = &net.UnixAddr{Name: path, Net: "unixgram"}
		if path[0] == '@' {
			n.addr.Name = "\x00" + path[1:]
		}
	}
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return n, nil
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n, nil // meant for another process (e.g. our parent)
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return nil, fmt.Errorf("WATCHDOG_USEC=%q: not a positive number of microseconds", usec)
	}
	n.watchdog = time.Duration(u) * time.Microsecond
	return n, nil
}

// Enabled reports whether a notify socket was given.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// WatchdogInterval is systemd's watchdog timeout for this process, 0 when off.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Send writes one datagram of newline-separated assignments.
func (n *Notifier) Send(state string) error {
	if !n.Enabled() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", firstLine(state), err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", firstLine(state), err)
	}
	return nil
}

// Ready says start-up is complete.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1\nSTATUS=" + status)
}

// Reloading starts a reload; systemd (253+) wants the monotonic clock with it so it
// can tell this reload's READY=1 from an earlier one.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("read monotonic clock: %w", err)
	}
	usec := ts.Nano() / 1000
	return n.Send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10) + "\nSTATUS=reloading the configuration")
}

// Stopping says shutdown has begun.
func (n *Notifier) Stopping(status string) error {
	return n.Send("STOPPING=1\nSTATUS=" + status)
}

// Status replaces the one-line status `systemctl status` shows.
func (n *Notifier) Status(status string) error {
	return n.Send("STATUS=" + status)
}

func firstLine(s string) string {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
