package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hangBound is how long a read of a special file may take before the test calls
// it a hang: a working open returns at once; a blocked one never does.
const hangBound = 10 * time.Second

// mkfifo makes a FIFO. At cleanup it opens it for writing a few times, so that a
// reader stuck in open(2) (the bug) is released and a failing test ends.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		for range 10 {
			if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				_ = f.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func wantNotRegular(t *testing.T, err error, path, typ string) {
	t.Helper()
	var nr *NotRegularError
	if !errors.As(err, &nr) || nr.Path != path || nr.Type != typ {
		t.Fatalf("error %v, want a NotRegularError for %s (%s)", err, path, typ)
	}
	if !strings.Contains(err.Error(), path+" is a "+typ+", not a regular file") {
		t.Errorf("error %q does not name the path and the type", err)
	}
}

// within runs f and fails the test if it does not return within hangBound.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	ret := make(chan struct{})
	go func() { f(); close(ret) }()
	select {
	case <-ret:
	case <-time.After(hangBound):
		t.Fatalf("%s did not return within %s", what, hangBound)
	}
}

func TestScanLogTailRefusesSpecialFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "redis.log")
	mkfifo(t, fifo)
	var err error
	within(t, "ScanLogTail of a FIFO", func() { _, err = ScanLogTail(fifo, 1024, time.UTC) })
	wantNotRegular(t, err, fifo, "FIFO")

	_, err = ScanLogTail(dir, 1024, time.UTC)
	wantNotRegular(t, err, dir, "directory")
	_, err = ScanLogTail("/dev/null", 1024, time.UTC)
	wantNotRegular(t, err, "/dev/null", "character device")

	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = ScanLogTail(sock, 1024, time.UTC)
	wantNotRegular(t, err, sock, "socket")

	// A symlink to a regular file is the admin's choice, and read.
	real := filepath.Join(dir, "real.log")
	writeFile(t, real, lineFork)
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	got, err := ScanLogTail(link, 1024, time.UTC)
	if err != nil || got[LogForkFailed].Cause == "" {
		t.Errorf("ScanLogTail through a symlink = %v, %v; want the fork line", got, err)
	}
	// A symlink to a FIFO is a FIFO.
	flink := filepath.Join(dir, "fifo-link.log")
	if err := os.Symlink(fifo, flink); err != nil {
		t.Fatal(err)
	}
	within(t, "ScanLogTail of a symlink to a FIFO", func() { _, err = ScanLogTail(flink, 1024, time.UTC) })
	wantNotRegular(t, err, flink, "FIFO")
}

// TestFollowerFIFO: a follower of a FIFO reports it, never blocks, and stops on
// cancel; when the path becomes a regular file it follows that.
func TestFollowerFIFO(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.log")
	mkfifo(t, path)
	f := NewFollower(FollowerOptions{Path: path, Poll: 10 * time.Millisecond, Location: time.UTC})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- f.Run(ctx) }()
	eventually(t, "the follower reports the FIFO", func() bool {
		var nr *NotRegularError
		return errors.As(f.Reading().Err, &nr)
	})
	wantNotRegular(t, f.Reading().Err, path, "FIFO")

	// Replaced by a regular file (as Redis would create it): followed.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "")
	eventually(t, "the follower opens the regular file", func() bool { return f.Reading().Err == nil })
	appendFile(t, path, lineFork)
	eventually(t, "the fork line is read", hasKind(f, LogForkFailed))

	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(hangBound):
		t.Fatal("Run did not return after cancel")
	}
}

func TestReadConfigFileRefusesFIFO(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "redis.conf")
	mkfifo(t, path)
	var r ConfigFileReading
	within(t, "ReadConfigFile of a FIFO", func() { r = ReadConfigFile(path, []string{"save"}) })
	wantNotRegular(t, r.Err, path, "FIFO")
}

func TestRedactError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, addr string
		err        error
		want       string
		// leaks are strings the result must not contain.
		leaks []string
	}{
		{
			name: "url error of a bad port", addr: "redis://u:sekrit99@h:port",
			err:  CheckAddr("redis://u:sekrit99@h:port"),
			want: `parse address URL: parse "redis://u:xxxxx@h:port": invalid port ":port" after host`, leaks: []string{"sekrit99"},
		},
		{
			name: "a slash in the password", addr: "redis://u:ab/cdef@h:1",
			err:  CheckAddr("redis://u:ab/cdef@h:1"),
			want: errPasswordBreaksURL.Error(), leaks: []string{"ab", "cdef"},
		},
		{
			name: "another error quoting the address", addr: "redis://u:sekrit99@h:1",
			err:  errors.New(`dial "redis://u:sekrit99@h:1": refused (sekrit99)`),
			want: `dial "redis://u:xxxxx@h:1": refused (xxxxx)`, leaks: []string{"sekrit99"},
		},
		{name: "no password", addr: "redis://u@h:port", err: CheckAddr("redis://u@h:port"), want: `parse "redis://u@h:port": invalid port`},
		{name: "not a URL", addr: "h:1", err: errors.New("boom h:1"), want: "boom h:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.err == nil {
				t.Fatal("the case's error is nil")
			}
			got := RedactError(tc.addr, tc.err)
			if !strings.Contains(got.Error(), tc.want) {
				t.Errorf("RedactError = %q, want it to contain %q", got, tc.want)
			}
			for _, l := range tc.leaks {
				if strings.Contains(got.Error(), l) {
					t.Errorf("RedactError = %q still holds %q", got, l)
				}
			}
			// Whatever a caller unwraps to holds no password either.
			var ue *url.Error
			if errors.As(got, &ue) {
				for _, l := range tc.leaks {
					if strings.Contains(ue.URL, l) || strings.Contains(ue.Error(), l) {
						t.Errorf("the unwrapped *url.Error %q still holds %q", ue, l)
					}
				}
			}
		})
	}
	if RedactError("redis://u:p@h:1", nil) != nil {
		t.Error("RedactError of nil is not nil")
	}
}

// TestPasswordFileFIFOAtConnect: password_file is read at every connect (a rotated
// secret is picked up); a FIFO put in its place after the config was checked must
// fail the connect with the file's type, never hang the dial.
func TestPasswordFileFIFOAtConnect(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	fifo := filepath.Join(t.TempDir(), "password")
	mkfifo(t, fifo)
	c, err := NewRedisClient(RedisOptions{Addr: ln.Addr().String(), PasswordFile: fifo, DialTimeout: time.Second, CommandTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- c.Ping(ctx).Err()
	}()
	select {
	case err := <-done:
		var nr *NotRegularError
		if !errors.As(err, &nr) && !strings.Contains(fmt.Sprint(err), "FIFO") {
			t.Errorf("connect with a FIFO as password_file: %v, want an error naming the FIFO", err)
		}
	case <-time.After(hangBound + 5*time.Second):
		t.Fatal("connect hangs on a FIFO as password_file")
	}
}
