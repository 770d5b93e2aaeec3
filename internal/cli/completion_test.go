package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestCompletionMatchesFlags: the completion table lists exactly the flags each
// command's real flag set defines (read from its -h output).
func TestCompletionMatchesFlags(t *testing.T) {
	t.Parallel()
	flagLine := regexp.MustCompile(`(?m)^  -([a-z-]+)`)
	for _, cmd := range commandNames() {
		if cmd == "version" || cmd == "completion" {
			continue
		}
		var out bytes.Buffer
		Run(context.Background(), []string{cmd, "-h"}, Env{Stdout: &out, Stderr: &out})
		var real []string
		for _, m := range flagLine.FindAllStringSubmatch(out.String(), -1) {
			real = append(real, m[1])
		}
		var listed []string
		for _, f := range completionCommands[cmd] {
			listed = append(listed, f.name)
		}
		sort.Strings(real)
		sort.Strings(listed)
		if len(real) == 0 || !slices.Equal(real, listed) {
			t.Errorf("%s: flags %q, completion lists %q", cmd, real, listed)
		}
	}
}

// TestBashCompletion runs the generated script in a real bash and asks it what
// it completes.
func TestBashCompletion(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	script := filepath.Join(t.TempDir(), "rg.bash")
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"completion", "bash"}, Env{Stdout: &out, Stderr: &out}); code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, out.String())
	}
	if err := os.WriteFile(script, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		prog := "source " + script + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "; _redis_guardian; printf '%s\\n' \"${COMPREPLY[@]}\""
		b, err := exec.Command(bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v: %s", err, b)
		}
		return strings.Fields(string(b))
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"redis-guardian", "che"}, []string{"check", "check-config"}},
		{[]string{"redis-guardian", "check", "--fo"}, []string{"--format"}},
		{[]string{"redis-guardian", "check", "--format", ""}, []string{"text", "json"}},
		{[]string{"redis-guardian", "run", "--log-format", "j"}, []string{"journal", "json"}},
		{[]string{"redis-guardian", "completion", ""}, []string{"bash", "zsh"}},
	} {
		if got := complete(tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("%q completes to %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestZshCompletionParses: zsh, when installed, accepts the generated function.
func TestZshCompletionParses(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"completion", "zsh"}, Env{Stdout: &out, Stderr: &out}); code != 0 {
		t.Fatalf("completion zsh: exit %d: %s", code, out.String())
	}
	if !strings.HasPrefix(out.String(), "#compdef redis-guardian\n") {
		t.Errorf("the zsh script does not start with #compdef")
	}
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("zsh is required under CI=true (scripts/install-deps.sh installs it): %v", err)
		}
		t.Skipf("zsh: %v", err)
	}
	script := filepath.Join(t.TempDir(), "_redis-guardian")
	if err := os.WriteFile(script, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v: %s", err, b)
	}
}
