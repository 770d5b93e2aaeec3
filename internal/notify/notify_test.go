package notify_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/notify"
	"github.com/redis-guardian/redis-guardian/internal/testsys"
)

// setEnv sets the notify variables of this process for one test (go-systemd reads
// the process environment, so these tests do not run in parallel).
func setEnv(t *testing.T, m map[string]string) {
	t.Helper()
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		t.Setenv(k, m[k])
	}
}

func TestNotifierSendsStates(t *testing.T) {
	ns := testsys.ListenNotify(t)
	setEnv(t, map[string]string{"NOTIFY_SOCKET": ns.Path})
	n, err := notify.New()
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled() || n.WatchdogInterval() != 0 {
		t.Fatalf("Enabled %v, watchdog %v: want a socket and no watchdog", n.Enabled(), n.WatchdogInterval())
	}
	for _, f := range []func() error{
		func() error { return n.Ready("1 instance: main ok") },
		func() error { return n.Status("1 instance: main unreachable") },
		n.Reloading,
		func() error { return n.Stopping("bye") },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	i := ns.WaitFor(t, 0, "READY", "1", 5*time.Second)
	if got := ns.All()[i].Fields["STATUS"]; got != "1 instance: main ok" {
		t.Errorf("READY's STATUS = %q", got)
	}
	i = ns.WaitFor(t, i+1, "STATUS", "1 instance: main unreachable", 5*time.Second)
	i = ns.WaitFor(t, i+1, "RELOADING", "1", 5*time.Second)
	us, err := strconv.ParseInt(ns.All()[i].Fields["MONOTONIC_USEC"], 10, 64)
	if err != nil || us <= 0 {
		t.Errorf("RELOADING without a MONOTONIC_USEC: %q", ns.All()[i].Raw)
	}
	ns.WaitFor(t, i+1, "STOPPING", "1", 5*time.Second)
}

func TestNotifierOutsideSystemd(t *testing.T) {
	setEnv(t, nil)
	n, err := notify.New()
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() {
		t.Error("enabled without NOTIFY_SOCKET")
	}
	if err := n.Ready("x"); err != nil {
		t.Errorf("Ready without a socket: %v, want a silent no-op", err)
	}
	if notify.NewWatchdog(n, nil) != nil {
		t.Error("a watchdog without WATCHDOG_USEC")
	}
}

func TestNotifierBadEnvironment(t *testing.T) {
	for name, e := range map[string]map[string]string{
		"relative socket": {"NOTIFY_SOCKET": "run/notify"},
		"bad usec":        {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "soon"},
		"zero usec":       {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "0"},
	} {
		setEnv(t, e)
		if _, err := notify.New(); err == nil {
			t.Errorf("%s: accepted %v", name, e)
		}
	}
	setEnv(t, map[string]string{"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
	n, err := notify.New()
	if err != nil || n.WatchdogInterval() != 0 {
		t.Errorf("WATCHDOG_PID of another process: interval %v, err %v; want no watchdog", n.WatchdogInterval(), err)
	}
	setEnv(t, map[string]string{"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": strconv.Itoa(os.Getpid())})
	n, err = notify.New()
	if err != nil || n.WatchdogInterval() != 2*time.Second {
		t.Errorf("abstract socket, our pid: interval %v, err %v", n.WatchdogInterval(), err)
	}
}

// TestWatchdogNeedsEveryLoop: a ping goes out only once every registered loop has
// beaten since the last one.
func TestWatchdogNeedsEveryLoop(t *testing.T) {
	ns := testsys.ListenNotify(t)
	setEnv(t, map[string]string{"NOTIFY_SOCKET": ns.Path, "WATCHDOG_USEC": "400000"})
	n, err := notify.New()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	wd := notify.NewWatchdog(n, func() time.Time { return now })
	if p := wd.Period(); p != 400*time.Millisecond/3 {
		t.Errorf("Period = %v", p)
	}
	wd.Register("a")
	wd.Register("b")
	for i := 0; i < 5; i++ {
		now = now.Add(time.Second)
		wd.Beat("a") // b never beats
	}
	wd.Beat("nobody") // unknown names are ignored
	time.Sleep(100 * time.Millisecond)
	if c := ns.Count(0, "WATCHDOG"); c != 0 {
		t.Fatalf("%d pings while loop b never beat", c)
	}
	wd.Beat("b")
	ns.WaitFor(t, 0, "WATCHDOG", "1", 5*time.Second)
	// Both beat again at once: too soon after the last ping, nothing is sent...
	wd.Beat("a")
	wd.Beat("b")
	time.Sleep(100 * time.Millisecond)
	if c := ns.Count(0, "WATCHDOG"); c != 1 {
		t.Fatalf("%d pings, want 1 (the second came within a quarter timeout)", c)
	}
	// ...until time moves on. Unregistering b lets a alone carry the watchdog.
	wd.Unregister("b")
	now = now.Add(time.Second)
	wd.Beat("a")
	ns.WaitFor(t, 1, "WATCHDOG", "1", 5*time.Second)
	if s := ns.All()[0].Raw; !strings.Contains(s, "WATCHDOG=1") {
		t.Errorf("datagram %q", s)
	}
}
