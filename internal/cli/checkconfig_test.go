package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// exampleConfig is the configuration the package ships as documentation.
const exampleConfig = "../../packaging/config.example.yaml"

func TestCheckConfigValid(t *testing.T) {
	t.Parallel()
	for name, path := range map[string]string{
		"good":    "testdata/checkconfig/good.yaml",
		"example": exampleConfig,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := runCLI(t, "check-config", "-c", path)
			if code != 0 {
				t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			if !strings.HasPrefix(out, path+": valid; ") {
				t.Errorf("stdout %q does not start with %q", out, path+": valid; ")
			}
		})
	}
}

func TestCheckConfigGoodDetails(t *testing.T) {
	t.Parallel()
	code, out, errs := runCLI(t, "check-config", "-c", "testdata/checkconfig/good.yaml")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"2 instance(s)", "cache=/run/redis/redis-server.sock", "queue=127.0.0.1:6380", "mode dry-run", "interval 500ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q lacks %q", out, want)
		}
	}
	if errs != "" {
		t.Errorf("unexpected stderr:\n%s", errs)
	}
}

// Secrets in a valid file draw a warning and never reach the output.
func TestCheckConfigSecrets(t *testing.T) {
	t.Parallel()
	code, out, errs := runCLI(t, "check-config", "-c", "testdata/checkconfig/inline-secret.yaml")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, secret := range []string{"hunter2", "swordfish"} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("output shows the password %q:\nstdout:\n%s\nstderr:\n%s", secret, out, errs)
		}
	}
	for _, want := range []string{"instances[0].addr", "instances[1].password"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr has no warning for %s:\n%s", want, errs)
		}
	}
}

func TestCheckConfigInvalid(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	for _, tc := range []struct {
		name, path string
		// want are substrings stderr must contain, each naming a problem.
		want []string
	}{
		{"typo key", "testdata/checkconfig/typo-key.yaml", []string{"instances[0].pasword_file: unknown key (line 3)"}},
		{"bad duration", "testdata/checkconfig/bad-duration.yaml", []string{`interval: "soon" is not a duration`}},
		{"bad addr", "testdata/checkconfig/bad-addr.yaml", []string{`instances[0].addr: "localhost"`}},
		{"missing file", missing, []string{missing}},
		{"many problems", "testdata/checkconfig/many-problems.yaml", []string{
			`interval: "soon"`, `mode: "fast"`, `instances[0].addr: "localhost"`,
		}},
		{"typo and values", "testdata/checkconfig/typo-and-values.yaml", []string{
			"instances[0].pasword_file: unknown key", `interval: "soon"`, `instances[0].addr: "localhost"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := runCLI(t, "check-config", "-c", tc.path)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if out != "" {
				t.Errorf("unexpected stdout %q", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if tc.path != missing && !strings.Contains(errs, tc.path) {
				t.Errorf("stderr does not name the file %s:\n%s", tc.path, errs)
			}
		})
	}
}

func TestCheckConfigUsage(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"extra argument": {"check-config", "-c", "testdata/checkconfig/good.yaml", "extra"},
		"unknown flag":   {"check-config", "--addr", "127.0.0.1:6380"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := runCLI(t, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			if errs == "" {
				t.Error("stderr is empty; want the reason")
			}
		})
	}
}
