// Package notify speaks the sd_notify protocol to systemd (READY, STATUS,
// RELOADING, STOPPING and the watchdog) through go-systemd's daemon package, which
// reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the process
// environment. What is ours is the checking of that environment at start (a
// malformed setting is an error, never a silently disabled watchdog) and, in
// watchdog.go, the rule of when the loops have earned a WATCHDOG=1.
package notify

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier sends state datagrams to $NOTIFY_SOCKET. The zero value (and a nil
// *Notifier) does nothing, which is what running outside systemd needs.
type Notifier struct {
	mu      sync.Mutex
	enabled bool
	// watchdog is WATCHDOG_USEC when it is meant for this process, else 0.
	watchdog time.Duration
}

// New reads the notify socket and watchdog settings of this process (systemd
// sets them in the environment of Type=notify units). A missing socket yields a
// Notifier that does nothing; a malformed setting is an error.
func New() (*Notifier, error) {
	n := &Notifier{}
	if path := os.Getenv("NOTIFY_SOCKET"); path != "" {
		// go-systemd would dial a relative path against our working directory.
		if path[0] != '/' && path[0] != '@' {
			return nil, fmt.Errorf("NOTIFY_SOCKET=%q: not an absolute path or abstract socket", path)
		}
		n.enabled = true
	}
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return nil, fmt.Errorf("WATCHDOG_USEC=%q, WATCHDOG_PID=%q: %w", os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), err)
	}
	n.watchdog = wd
	return n, nil
}

// Enabled reports whether a notify socket was given.
func (n *Notifier) Enabled() bool { return n != nil && n.enabled }

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
	if _, err := daemon.SdNotify(false, state); err != nil {
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
