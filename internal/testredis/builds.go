package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Build is a server the tests run: a Redis or Valkey binary, on the host or in a
// Debian root (chroot) whose libc it needs. scripts/servers.sh provisions them.
type Build struct {
	// Name is "redis-7.0", "valkey-8.0", "redis-8.0" or "valkey-8.1".
	Name string
	// Bin is the server binary, as seen from Root.
	Bin string
	// Root is the chroot directory, "" for the host.
	Root string
}

// Valkey reports whether the build is a Valkey server.
func (b Build) Valkey() bool { return strings.HasPrefix(b.Name, "valkey") }

// HostRedis is Debian 12's redis-server on the host: what Start runs without a Build.
var HostRedis = Build{Name: "redis-7.0", Bin: "redis-server"}

// MatrixNames are the builds every core fault test runs against.
var MatrixNames = []string{"redis-7.0", "valkey-8.0", "redis-8.0", "valkey-8.1"}

// serversFile is where scripts/servers.sh lists the builds.
func serversFile() string {
	cache := os.Getenv("REDIS_GUARDIAN_CI_CACHE")
	if cache == "" {
		cache = "/var/cache/redis-guardian-ci"
	}
	return filepath.Join(cache, "servers", "servers.tsv")
}

// Matrix returns every build of MatrixNames. One that is not provisioned fails the
// test under CI=true (make test provisions them: scripts/servers.sh) and skips it
// elsewhere, with the reason; so a test ranges over what it returns.
func Matrix(t testing.TB) []Build {
	t.Helper()
	RequireRoot(t)
	builds, err := readBuilds(serversFile())
	var out []Build
	var missing []string
	for _, name := range MatrixNames {
		b, ok := builds[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		if _, serr := os.Stat(filepath.Join(b.Root, b.Bin)); serr != nil && b.Root != "" {
			missing = append(missing, fmt.Sprintf("%s (%v)", name, serr))
			continue
		}
		out = append(out, b)
	}
	if len(missing) > 0 {
		why := fmt.Sprintf("servers not provisioned: %s (run scripts/servers.sh, which make test does)", strings.Join(missing, ", "))
		if err != nil {
			why += ": " + err.Error()
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("testredis: %s; required under CI=true", why)
		}
		t.Logf("testredis: %s; testing the others", why)
	}
	if len(out) == 0 {
		t.Skip("testredis: no server build provisioned")
	}
	return out
}

// readBuilds reads servers.tsv: name, binary, root ("-" for the host).
func readBuilds(path string) (map[string]Build, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Build{HostRedis.Name: HostRedis}, fmt.Errorf("%s does not exist", path)
	}
	if err != nil {
		return map[string]Build{HostRedis.Name: HostRedis}, err
	}
	defer f.Close()
	out := map[string]Build{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 3 {
			continue
		}
		b := Build{Name: fields[0], Bin: fields[1]}
		if fields[2] != "-" {
			b.Root = fields[2]
		}
		out[b.Name] = b
	}
	return out, sc.Err()
}

// Tool returns a path that runs one of the build's tools, named without its family
// ("check-aof": redis-check-aof or valkey-check-aof), with the build's own libc: the
// binary beside Bin for a host build, else a script in a temporary dir that runs it
// under chroot. Paths given to a tool in a Debian root must be inside a Server's Dir,
// which is bind-mounted at the same path there.
func (b Build) Tool(t testing.TB, tool string) string {
	t.Helper()
	family := "redis"
	if b.Valkey() {
		family = "valkey"
	}
	bin := filepath.Join(filepath.Dir(b.Bin), family+"-"+tool)
	if _, err := os.Stat(filepath.Join(b.Root, bin)); err != nil {
		t.Fatalf("testredis: %s has no %s: %v", b.Name, family+"-"+tool, err)
	}
	if b.Root == "" {
		return bin
	}
	script := filepath.Join(t.TempDir(), family+"-"+tool)
	body := fmt.Sprintf("#!/bin/sh\nexec chroot %q %q \"$@\"\n", b.Root, bin)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatalf("testredis: write %s: %v", script, err)
	}
	return script
}
