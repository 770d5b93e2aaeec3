// Package packaging holds the deb and rpm's files; its tests run the maintainer
// scripts against a scratch root.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// prermCopy writes a copy of prerm that works on dirs under root instead of /etc,
// /var/lib and /usr/bin, with a systemctl that only logs, so it can run here.
func prermCopy(t *testing.T, root string) (script, pathEnv string) {
	t.Helper()
	b, err := os.ReadFile("scripts/prerm")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{
		{"conf=/etc/redis-guardian", "conf=" + root + "/etc"},
		{"state=/var/lib/redis-guardian\n", "state=" + root + "/state\n"},
		{"valkey_state=/var/lib/redis-guardian-valkey", "valkey_state=" + root + "/valkey-state"},
		{"bin=/usr/bin/redis-guardian", "bin=" + root + "/no-such-binary"},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("prerm no longer says %q: update this test", r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	script = filepath.Join(root, "prerm")
	if err := os.WriteFile(script, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho \"systemctl $*\" >>\""+root+"/systemctl.log\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, bin + ":" + os.Getenv("PATH")
}

// TestPrermNeverWritesThroughAPlantedMarker is the review's second hole: the state
// dirs belong to the redis uid, prerm runs as root, and `: >"$d/.restore-on-stop"`
// truncated whatever a link planted under that name pointed to. Now a marker is
// made new (mktemp, then rename over the name), and a linked state dir is skipped.
func TestPrermNeverWritesThroughAPlantedMarker(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, d := range []string{"etc", "state", "state/inst", "valkey-state", "elsewhere"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(root, "root-secret")
	const content = "root's file, not to be truncated\n"
	if err := os.WriteFile(secret, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// The planted links: each marker name, in each kind of state dir, points to
	// root's file; an instance "state dir" is itself a link to another dir.
	for _, l := range []string{"state/.restore-on-stop", "state/inst/.restore-on-stop", "valkey-state/.restore-on-stop", "state/.disabled-by-package-removal"} {
		if err := os.Symlink(secret, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "elsewhere"), filepath.Join(root, "state", "linked")); err != nil {
		t.Fatal(err)
	}
	script, path := prermCopy(t, root)
	cmd := exec.Command("/bin/sh", script, "remove")
	cmd.Env = append(os.Environ(), "PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("prerm remove: %v\n%s", err, out)
	}
	b, err := os.ReadFile(secret)
	if err != nil || string(b) != content {
		t.Errorf("root's file after prerm: %q, %v; want it untouched", b, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "elsewhere")); len(entries) != 0 {
		t.Errorf("prerm wrote into the dir a linked state dir points to: %v", entries)
	}
	// The marker that stays (postinst reads it) is a new regular file of its own.
	fi, err := os.Lstat(filepath.Join(root, "state", ".disabled-by-package-removal"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Errorf(".disabled-by-package-removal after prerm: %v, %v; want a new regular file", fi, err)
	} else if st := fi.Sys().(*syscall.Stat_t); st.Nlink != 1 {
		t.Errorf(".disabled-by-package-removal has %d links", st.Nlink)
	}
	// .restore-on-stop is made for the stop, then removed.
	for _, d := range []string{"state", "state/inst", "valkey-state"} {
		if _, err := os.Lstat(filepath.Join(root, d, ".restore-on-stop")); err == nil {
			t.Errorf("%s/.restore-on-stop left behind", d)
		}
	}
	// No temp file of mark's is left.
	for _, d := range []string{"state", "state/inst", "valkey-state"} {
		entries, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range entries {
			if strings.Contains(e.Name(), ".XXXX") || strings.HasPrefix(e.Name(), "..") || (strings.HasPrefix(e.Name(), ".restore-on-stop.")) {
				t.Errorf("temp file left in %s: %s", d, e.Name())
			}
		}
	}
}
