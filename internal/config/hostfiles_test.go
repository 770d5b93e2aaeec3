package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// otherHostDoc names a password file and TLS files that exist on the host it is
// meant for, not here.
func otherHostDoc(t *testing.T) (doc, pass, ca, cert, key string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "absent") // never created
	pass, ca, cert, key = filepath.Join(dir, "redis.pass"), filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	doc = "instances:\n" +
		"  - name: main\n    addr: 10.0.0.5:6380\n    password_file: " + pass + "\n" +
		"  - name: tls\n    addr: rediss://10.0.0.6:6380\n    tls: {ca: " + ca + ", cert: " + cert + ", key: " + key + "}\n"
	return doc, pass, ca, cert, key
}

// TestHostPassIsSeparate: a file meant for another host passes the document pass
// and fails the pass over this host's files, each problem naming its key.
func TestHostPassIsSeparate(t *testing.T) {
	t.Parallel()
	doc, pass, ca, cert, key := otherHostDoc(t)

	c, err := ParseWith(strings.NewReader(doc), Options{OtherHost: true})
	if err != nil {
		t.Fatalf("ParseWith(OtherHost): %v", err)
	}
	if c.Instances[0].PasswordFile != pass {
		t.Errorf("PasswordFile = %q, want %q", c.Instances[0].PasswordFile, pass)
	}
	if diff := cmp.Diff(&TLS{CA: ca, Cert: cert, Key: key}, c.Instances[1].TLS); diff != "" {
		t.Errorf("TLS (-want +got):\n%s", diff)
	}

	wantHost := []string{
		"instances[0].password_file: cannot read the file named there (no such file or directory)",
		"instances[1].tls.ca: stat " + ca + ": no such file or directory",
		"instances[1].tls.cert: stat " + cert + ": no such file or directory",
		"instances[1].tls.key: stat " + key + ": no such file or directory",
	}
	if diff := cmp.Diff(wantHost, shortened(hostFiles(c).problems)); diff != "" {
		t.Errorf("host pass problems (-want +got):\n%s", diff)
	}

	_, err = Parse(strings.NewReader(doc))
	if err == nil {
		t.Fatal("Parse accepted files that do not exist here")
	}
	if diff := cmp.Diff(wantHost, shortened(problems(t, err))); diff != "" {
		t.Errorf("Parse problems (-want +got):\n%s", diff)
	}
}

// shortened drops the end of password_file's problem, which says why the value
// is not shown.
func shortened(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i], _, _ = strings.Cut(p, "; the value is not shown")
	}
	return out
}

// TestOtherHostStillJudgesTheDocument: skipping the host pass skips nothing else.
func TestOtherHostStillJudgesTheDocument(t *testing.T) {
	t.Parallel()
	doc, _, _, _, _ := otherHostDoc(t)
	doc = "interval: soon\n" + doc + "  - addr: localhost\n    tls: {cert: /absent/c.crt}\n    password: x\n    password_file: /absent/p\n"
	_, err := ParseWith(strings.NewReader(doc), Options{OtherHost: true})
	if err == nil {
		t.Fatal("ParseWith(OtherHost) accepted a bad document")
	}
	want := []string{
		`interval: "soon" is not a duration (examples: 500ms, 1s, 5m)`,
		`instances[2].addr: "localhost" is not host:port ([host]:port for IPv6), a unix socket path (absolute) or a redis:// URL`,
		"instances[2].password: set either password or password_file, not both",
		"instances[2].tls: cert and key must be given together",
	}
	if diff := cmp.Diff(want, problems(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestHostWarningsSkipped: the mode of the password file is the host's business.
func TestHostWarningsSkipped(t *testing.T) {
	t.Parallel()
	world := writeFile(t, filepath.Join(t.TempDir(), "world.pass"), "pw\n", 0o644)
	doc := "instances:\n  - {addr: 'h:1', password_file: " + world + ", tls: {insecure_skip_verify: true}}\n"
	c, err := ParseWith(strings.NewReader(doc), Options{OtherHost: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"instances[0].tls.insecure_skip_verify: the server certificate is not verified"}
	if diff := cmp.Diff(want, c.Warnings); diff != "" {
		t.Errorf("OtherHost warnings (-want +got):\n%s", diff)
	}
	c = mustParse(t, doc)
	// In the order of one pass checking everything: password_file before tls.
	want = []string{"instances[0].password_file: " + world + " is readable by other users (mode 0644); chmod 0600 or 0640", want[0]}
	if diff := cmp.Diff(want, c.Warnings); diff != "" {
		t.Errorf("Parse warnings (-want +got):\n%s", diff)
	}
}

// TestProblemsInOneOrder: the two passes' problems are listed as when one
// function checked everything: the global ones first, then instance by instance,
// each instance's keys in their order.
func TestProblemsInOneOrder(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "absent")
	doc := "interval: soon\ninstances:\n" +
		"  - {addr: localhost, password_file: " + missing + "}\n" +
		"  - {addr: 'h:2'}\n" +
		"  - name: 'bad name'\n    addr: 'h:3'\n    password: x\n    password_file: " + missing + "\n" +
		"    tls: {ca: " + missing + ", cert: " + missing + "}\n    config_command: ''\n    host_checks: maybe\n"
	_, err := parse(t, doc)
	if err == nil {
		t.Fatal("Parse accepted the document")
	}
	var paths []string
	for _, p := range problems(t, err) {
		path, _, _ := strings.Cut(p, ": ")
		paths = append(paths, path)
	}
	want := []string{
		"interval", "instances[0].addr", "instances[0].password_file",
		"instances[2].name", "instances[2].password", "instances[2].password_file",
		"instances[2].tls", "instances[2].tls.ca", "instances[2].tls.cert",
		"instances[2].config_command", "instances[2].host_checks",
	}
	if !slices.Equal(paths, want) {
		t.Errorf("problems name\n  %q\nwant\n  %q", paths, want)
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	a := &validator{}
	a.addf("g", "1")
	a.warn("wg")
	a.mark()
	a.addf("i0", "a")
	a.mark()
	a.mark()
	a.addf("i2", "a")
	a.warn("w2a")
	b := &validator{}
	b.mark()
	b.addf("i0", "b")
	b.mark()
	b.addf("i1", "b")
	b.mark()
	b.warn("w2b")
	m := merge(a, b)
	if diff := cmp.Diff([]string{"g: 1", "i0: a", "i0: b", "i1: b", "i2: a"}, m.problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"wg", "w2a", "w2b"}, m.warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
