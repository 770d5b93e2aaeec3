package cli_test

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

const otherHostConfig = "testdata/checkconfig/other-host.yaml"

// absentHere fails the test unless the files the other host's config names are
// missing on this one: the tests below are about exactly that.
func absentHere(t *testing.T) {
	t.Helper()
	for _, f := range []string{"main.pass", "ca.crt", "client.crt", "client.key"} {
		p := "/srv/other-host/redis-guardian/" + f
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s must not exist on the test host (stat: %v)", p, err)
		}
	}
}

// TestCheckConfigOtherHost: --host=false judges a file meant for another host on
// the document alone, and says that the host checks were skipped.
func TestCheckConfigOtherHost(t *testing.T) {
	t.Parallel()
	absentHere(t)
	code, out, errs := runCLI(t, "check-config", "--host=false", "-c", otherHostConfig)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.HasPrefix(out, otherHostConfig+": valid; 2 instance(s): main=10.0.0.5:6380, tls=rediss://10.0.0.6:6380; ") {
		t.Errorf("stdout %q does not say the file is valid", out)
	}
	if !strings.Contains(out, "host checks skipped (--host=false)") {
		t.Errorf("stdout %q does not say the host checks were skipped", out)
	}
	if errs != "" {
		t.Errorf("unexpected stderr:\n%s", errs)
	}
}

// TestCheckConfigOtherHostOnThisHost: without --host=false the same file is
// judged against this host, where its files are missing, each named by its key.
func TestCheckConfigOtherHostOnThisHost(t *testing.T) {
	t.Parallel()
	absentHere(t)
	for _, args := range [][]string{
		{"check-config", "-c", otherHostConfig},
		{"check-config", "--host=true", "-c", otherHostConfig},
		{"check-config", "--host", "-c", otherHostConfig},
	} {
		code, out, errs := runCLI(t, args...)
		if code != 1 {
			t.Errorf("%q: exit %d, want 1", args, code)
		}
		if out != "" {
			t.Errorf("%q: unexpected stdout %q", args, out)
		}
		for _, w := range []string{
			otherHostConfig + ": invalid configuration:",
			"instances[0].password_file: cannot read the file named there (no such file or directory)",
			"instances[1].tls.ca: stat /srv/other-host/redis-guardian/ca.crt: no such file or directory",
			"instances[1].tls.cert: stat /srv/other-host/redis-guardian/client.crt",
			"instances[1].tls.key: stat /srv/other-host/redis-guardian/client.key",
		} {
			if !strings.Contains(errs, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", args, w, errs)
			}
		}
		if strings.Contains(errs, "skipped") {
			t.Errorf("%q: stderr says something was skipped:\n%s", args, errs)
		}
	}
}

// TestCheckConfigOtherHostBad: --host=false still finds the document's own
// problems, and not the host's.
func TestCheckConfigOtherHostBad(t *testing.T) {
	t.Parallel()
	absentHere(t)
	const path = "testdata/checkconfig/other-host-bad.yaml"
	code, out, errs := runCLI(t, "check-config", "--host=false", "-c", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if out != "" {
		t.Errorf("unexpected stdout %q", out)
	}
	if !strings.Contains(errs, `interval: "soon" is not a duration`) {
		t.Errorf("stderr lacks the interval problem:\n%s", errs)
	}
	if strings.Contains(errs, "instances[0].password_file") {
		t.Errorf("stderr reports the password file, which --host=false does not look at:\n%s", errs)
	}
	if !strings.Contains(errs, "note: host checks skipped (--host=false)") {
		t.Errorf("stderr does not say the host checks were skipped:\n%s", errs)
	}
}
