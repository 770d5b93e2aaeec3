package config

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// FuzzParse checks Parse, the path every config file takes: it never panics and is
// deterministic; it fails only with a *ValidationError whose problems each name
// their place on one line and never print a password or the value of
// password_file; the document pass (check-config --host=false) finds a subset of
// Parse's problems and, when Parse accepts, the same configuration; and what it
// accepts holds the promises the rest of the guardian relies on.
func FuzzParse(f *testing.F) {
	for _, p := range []string{examplePath, "../../packaging/valkey.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(withoutComments(b))
	}
	f.Add([]byte(""))
	f.Add([]byte("interval: 250ms\nmode: dry-run\ninstances:\n  - addr: redis://u:hunter22@127.0.0.1:6380/0\n    name: main\n    remedies:\n      stop_writes: {enabled: false}\n"))
	f.Add([]byte("instances:\n  - {addr: 'h:1', password_file: 'S3cr3t-hunter2'}\n  - {addr: 'h:2', tls: {ca: /nonexistent/ca.crt}}\n"))
	f.Add([]byte("thresholds:\n  fragmentation_min_bytes: 1gb\n  fork_slow: -1s\nintervall: 2s\nremedies:\n  fork_budget:\n    max_forks: x\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse(bytes.NewReader(doc))
		c2, err2 := Parse(bytes.NewReader(doc))
		if diff := cmp.Diff(c, c2); diff != "" || errText(err) != errText(err2) {
			t.Fatalf("not deterministic: %v / %v\n%s", err, err2, diff)
		}
		doc1, docErr := ParseWith(bytes.NewReader(doc), Options{OtherHost: true})
		if err != nil {
			checkProblems(t, doc, err)
			if docErr != nil && !isSubsequence(problemsOf(docErr), problemsOf(err)) {
				t.Errorf("the document pass finds problems Parse does not:\n%v\n---\n%v", docErr, err)
			}
			return
		}
		if docErr != nil {
			t.Fatalf("Parse accepts what the document pass refuses: %v", docErr)
		}
		if diff := cmp.Diff(c, doc1); diff != "" {
			t.Errorf("the document pass builds another configuration (-Parse +document pass):\n%s", diff)
		}
		checkAccepted(t, c)
	})
}

// withoutComments drops the comment-only and blank lines of a YAML document: the
// example's 15 KiB are mostly comments, which cost every exec and every
// minimization of the fuzzer and reach no code of this package.
func withoutComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
		}
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func problemsOf(err error) []string {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	return []string{err.Error()}
}

// isSubsequence says whether every element of a is in b, in a's order.
func isSubsequence(a, b []string) bool {
	i := 0
	for _, s := range b {
		if i < len(a) && a[i] == s {
			i++
		}
	}
	return i == len(a)
}

// checkProblems checks Parse's error on doc.
func checkProblems(t *testing.T, doc []byte, err error) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if len(ve.Problems) == 0 {
		t.Fatal("a ValidationError with no problem")
	}
	secrets := secretsOf(doc)
	for _, p := range ve.Problems {
		place, what, ok := strings.Cut(p, ": ")
		if !ok || strings.TrimSpace(place) == "" || strings.TrimSpace(what) == "" {
			t.Errorf("problem %q does not name its place", p)
		}
		if i := strings.IndexFunc(p, unicode.IsControl); i >= 0 {
			t.Errorf("problem %q holds a control character at %d: one problem a line, and nothing that rewrites the terminal", p, i)
		}
		for _, s := range secrets {
			if strings.Contains(p, s) {
				t.Errorf("problem %q prints %q, a password or the value of password_file", p, s)
			}
		}
	}
}

// secretsOf returns the passwords of doc (password, password_file, a redis:// URL's
// password) that are worth looking for in a problem: at least 6 bytes, and in no
// other scalar of the document (a problem about that one may print it).
func secretsOf(doc []byte) []string {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil {
		return nil
	}
	var scalars, candidates []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			scalars = append(scalars, n.Value)
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Kind != yaml.ScalarNode {
					continue
				}
				switch k.Value {
				case "password", "password_file":
					candidates = append(candidates, v.Value)
				case "addr":
					if u, err := url.Parse(v.Value); err == nil && u.User != nil {
						if pw, ok := u.User.Password(); ok {
							candidates = append(candidates, pw)
						}
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	var out []string
	for _, s := range candidates {
		n := 0
		for _, sc := range scalars {
			if strings.Contains(sc, s) {
				n++
			}
		}
		if len(s) >= 6 && n == 1 {
			out = append(out, s)
		}
	}
	return out
}

// checkAccepted checks the promises of a configuration Parse accepted.
func checkAccepted(t *testing.T, c *Config) {
	t.Helper()
	if c.Interval < MinInterval {
		t.Errorf("interval %s is below the minimum", c.Interval)
	}
	if c.Mode != ModeEnforce && c.Mode != ModeDryRun {
		t.Errorf("mode %q", c.Mode)
	}
	if c.StateDir == "" {
		t.Error("no state dir")
	}
	if len(c.Instances) == 0 {
		t.Fatal("no instance")
	}
	var names []string
	for i, in := range c.Instances {
		if !nameRE.MatchString(in.Name) || slices.Contains(names, in.Name) {
			t.Errorf("instances[%d].name %q is not a unique safe name", i, in.Name)
		}
		names = append(names, in.Name)
		if in.Addr == "" || in.ConfigCommand == "" {
			t.Errorf("instances[%d]: addr %q, config_command %q", i, in.Addr, in.ConfigCommand)
		}
		// A socket path may hold a space; no address holds a control character,
		// and no host a space.
		if strings.IndexFunc(in.Addr, unicode.IsControl) >= 0 ||
			!strings.HasPrefix(in.Addr, "/") && strings.IndexFunc(in.Addr, unicode.IsSpace) >= 0 {
			t.Errorf("instances[%d].addr %q accepted", i, in.Addr)
		}
	}
}

// TestProblemsNameTheirPlaceOnOneLine: FuzzParse found a key that named no place
// (an empty key: ": unknown key (line 1)", testdata/fuzz/FuzzParse/df4e6e1d1b67683c);
// keys and values holding a newline split a problem over lines, and an address
// with a control character or a host with a space was accepted.
func TestProblemsNameTheirPlaceOnOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc, want string
	}{
		{`"": 1`, `"": unknown key (line 1)`},
		{"\"a\\nb\": 1\n", `"a\nb": unknown key (line 1)`},
		{"thresholds:\n  \"x.y\": 1\n", `thresholds."x.y": unknown key (line 2)`},
		{"remedies:\n  stop_writes:\n    \"\": 1\n", `remedies.stop_writes."": unknown key (line 3); known: cooldown, enabled, max_per_hour, predictive, predictive_dwell, require_aof, warn_every`},
		{"instances:\n  - {addr: 'h:1', tls: {ca: \"/x\\ny\"}}\n", `instances[0].tls.ca: stat /x\ny: no such file or directory`},
		{"instances: [{addr: \"a\\nb:1\"}]\n", `instances[0].addr: the address holds a control character (at byte 1)`},
		{"instances: [{addr: \"/run/redis\\u0085.sock\"}]\n", `instances[0].addr: the address holds a control character (at byte 10)`},
		{"instances: [{addr: \"my host:6379\"}]\n", `instances[0].addr: "my host:6379": a host name holds no space`},
	} {
		_, err := Parse(strings.NewReader(tc.doc))
		if err == nil {
			t.Errorf("%q: accepted", tc.doc)
			continue
		}
		if ps := problemsOf(err); !slices.Contains(ps, tc.want) {
			t.Errorf("%q: problems %q, want %q among them", tc.doc, ps, tc.want)
		}
	}
	if _, err := Parse(strings.NewReader("instances: [{addr: \"/run/my redis/redis.sock\"}]\n")); err != nil {
		t.Errorf("a socket path with a space: %v", err)
	}
}
