package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

const examplePath = "../../packaging/config.example.yaml"

// equateEmpty treats nil and empty slices alike: IgnoreFindings and Warnings are nil
// or empty depending on how they were built, which callers cannot tell apart.
var equateEmpty = cmpopts.EquateEmpty()

// defaultConfig is the configuration an empty document must produce, spelled out
// here rather than taken from the code under test.
func defaultConfig() *Config {
	return &Config{
		Interval:      time.Second,
		Timeouts:      Timeouts{Connect: 2 * time.Second, Command: time.Second},
		ConfigRefresh: time.Minute,
		InfoRefresh:   10 * time.Second,
		FastPoll:      50 * time.Millisecond,
		Mode:          ModeEnforce,
		StateDir:      "/var/lib/redis-guardian",
		RuntimeDir:    DefaultRuntimeDir,
		MetricsListen: "127.0.0.1:9637",
		Preflight:     Preflight{MaxTruncateBytes: 1 << 20},
		Instances: []Instance{{
			Name:          "127.0.0.1_6379",
			Addr:          "127.0.0.1:6379",
			ConfigCommand: "CONFIG",
			HostChecks:    "auto",
			Thresholds:    policy.DefaultThresholds(),
			Remedies:      policy.DefaultRemedies(),
		}},
	}
}

func parse(t *testing.T, doc string) (*Config, error) {
	t.Helper()
	return Parse(strings.NewReader(doc))
}

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := parse(t, doc)
	if err != nil {
		t.Fatalf("Parse: %v\n--- document:\n%s", err, doc)
	}
	return c
}

// problems returns the validation problems of err, failing when err is not a
// *ValidationError.
func problems(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve.Problems
}

// writeFile creates a file with the given mode; Chmod makes the mode independent of
// the umask.
func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc string }{
		{"empty", ""},
		{"whitespace", "  \n\t\n"},
		{"comment only", "# nothing configured yet\n"},
		{"document marker", "---\n"},
		{"null", "~\n"},
		{"empty instance list", "instances: []\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := mustParse(t, tc.doc)
			if diff := cmp.Diff(defaultConfig(), got, equateEmpty); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tc.doc, diff)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff(defaultConfig(), Default(), equateEmpty); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseFullDocument(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pass := writeFile(t, filepath.Join(dir, "redis.pass"), "s3cret\n", 0o600)
	ca := writeFile(t, filepath.Join(dir, "ca.crt"), "x", 0o644)
	cert := writeFile(t, filepath.Join(dir, "client.crt"), "x", 0o644)
	key := writeFile(t, filepath.Join(dir, "client.key"), "x", 0o600)

	doc := fmt.Sprintf(`
interval: 250ms
timeouts:
  connect: 3s
  command: 700ms
config_refresh: 30s
info_refresh: 5s
fast_poll: 20ms
mode: dry-run
state_dir: /srv/guardian
metrics_listen: "192.0.2.10:9999"
thresholds:
  fragmentation_ratio: 2.5
  fragmentation_min_bytes: 1gb
  maxmemory_used_percent: 80
  aof_growth_ratio: 4
  aof_buffer_bytes: 512kb
  disk_used_percent: 85.5
  fork_slow: 1s
  cgroup_fork_factor: 3
  fork_headroom_factor: 1.5
  swap_bytes: 2048
  repl_link_down_grace: 1m
  stale_temp_min_age: 1h
remedies:
  stop_writes:
    enabled: false
    cooldown: 10s
    max_per_hour: 5
    require_aof: true
    predictive: false
    warn_every: 1m
  bgsave_retry:
    enabled: true
    cooldown: 1s
    max_per_hour: 10
    initial_backoff: 2s
    max_backoff: 1m
  rewrite_deferral:
    enabled: false
    cooldown: 2s
    max_per_hour: 3
    high_ops: 20000
    low_ops: 1000
    window: 5s
    dwell: 1m
    max_deferral: 2h
  temp_cleanup:
    enabled: false
    cooldown: 3s
    max_per_hour: 7
    min_age: 30m
ignore_findings: [thp_enabled]
instances:
  - name: main
    addr: 10.0.0.5:6380
    username: guardian
    password_file: %s
    tls:
      ca: %s
      cert: %s
      key: %s
      server_name: redis.internal
    config_command: CFG_x1
    host_checks: "on"
    log_file: /var/log/redis/main.log
    ignore_findings: [maxmemory_unset]
    thresholds:
      disk_used_percent: 95
    remedies:
      temp_cleanup:
        enabled: true
  - addr: /run/redis/cache.sock
    host_checks: "off"
`, pass, ca, cert, key)

	thr := policy.Thresholds{
		FragmentationRatio:    2.5,
		FragmentationMinBytes: 1 << 30,
		MaxmemoryUsedPercent:  80,
		AOFGrowthRatio:        4,
		AOFBufferBytes:        512 << 10,
		DiskUsedPercent:       85.5,
		ForkSlow:              time.Second,
		CgroupForkFactor:      3,
		ForkHeadroomFactor:    1.5,
		SwapBytes:             2048,
		ReplLinkDownGrace:     time.Minute,
		StaleTempMinAge:       time.Hour,
	}
	// Every remedy of the registry, with the defaults but for those the document sets.
	rem := policy.DefaultRemedies()
	*policy.ConfigOf[*policy.StopWritesConfig](rem) = policy.StopWritesConfig{
		Limits:     policy.Limits{Enabled: false, Cooldown: 10 * time.Second, MaxPerHour: 5},
		RequireAOF: true, Predictive: false, WarnEvery: time.Minute, PredictiveDwell: 30 * time.Second,
	}
	*policy.ConfigOf[*policy.BgsaveRetryConfig](rem) = policy.BgsaveRetryConfig{
		Limits:         policy.Limits{Enabled: true, Cooldown: time.Second, MaxPerHour: 10},
		InitialBackoff: 2 * time.Second, MaxBackoff: time.Minute,
	}
	*policy.ConfigOf[*policy.RewriteDeferralConfig](rem) = policy.RewriteDeferralConfig{
		Limits:  policy.Limits{Enabled: false, Cooldown: 2 * time.Second, MaxPerHour: 3},
		HighOps: 20000, LowOps: 1000, Window: 5 * time.Second, Dwell: time.Minute, MaxDeferral: 2 * time.Hour,
	}
	*policy.ConfigOf[*policy.TempCleanupConfig](rem) = policy.TempCleanupConfig{
		Limits: policy.Limits{Enabled: false, Cooldown: 3 * time.Second, MaxPerHour: 7},
		MinAge: 30 * time.Minute,
	}
	thr0, rem0 := thr, rem.Clone()
	thr0.DiskUsedPercent = 95
	policy.ConfigOf[*policy.TempCleanupConfig](rem0).Enabled = true

	want := &Config{
		Interval:      250 * time.Millisecond,
		Timeouts:      Timeouts{Connect: 3 * time.Second, Command: 700 * time.Millisecond},
		ConfigRefresh: 30 * time.Second,
		InfoRefresh:   5 * time.Second,
		FastPoll:      20 * time.Millisecond,
		Mode:          ModeDryRun,
		StateDir:      "/srv/guardian",
		RuntimeDir:    DefaultRuntimeDir,
		MetricsListen: "192.0.2.10:9999",
		Preflight:     Preflight{MaxTruncateBytes: 1 << 20},
		Instances: []Instance{
			{
				Name: "main", Addr: "10.0.0.5:6380", Username: "guardian", PasswordFile: pass,
				TLS:           &TLS{CA: ca, Cert: cert, Key: key, ServerName: "redis.internal"},
				ConfigCommand: "CFG_x1", HostChecks: "on", LogFile: "/var/log/redis/main.log",
				IgnoreFindings: []string{"thp_enabled", "maxmemory_unset"},
				Thresholds:     thr0, Remedies: rem0,
			},
			{
				Name: "cache", Addr: "/run/redis/cache.sock", // a socket is named by its file
				ConfigCommand: "CONFIG", HostChecks: "off",
				IgnoreFindings: []string{"thp_enabled"},
				Thresholds:     thr, Remedies: rem,
			},
		},
	}
	got := mustParse(t, doc)
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestExampleConfig(t *testing.T) {
	t.Parallel()
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("the shipped example does not load: %v", err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("the shipped example gives warnings: %q", c.Warnings)
	}
	// The example documents the defaults: loading it must change nothing.
	if diff := cmp.Diff(defaultConfig(), c, equateEmpty); diff != "" {
		t.Errorf("the example's values are not the defaults (-default +example):\n%s", diff)
	}
}

// TestExampleConfigMentionsEveryKey keeps the example complete: every key the raw
// types accept appears in it, set or commented out.
func TestExampleConfigMentionsEveryKey(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var keys []string
	var walk func(reflect.Type, string)
	walk = func(rt reflect.Type, path string) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct {
			return
		}
		for name, ft := range yamlFields(rt) {
			keys = append(keys, join(path, name))
			walk(ft, join(path, name))
		}
	}
	walk(reflect.TypeOf(rawConfig{}), "")
	slices.Sort(keys)
	for _, k := range keys {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(leaf) + `:`).MatchString(text) {
			t.Errorf("%s: key %q (%s) is not in the example", examplePath, leaf, k)
		}
	}
	if len(keys) < 30 {
		t.Errorf("found only %d keys in the raw types; the walk is broken", len(keys))
	}
	// The remedies' keys come from the registry: each remedy's section in the
	// example must name every key its Configure reads.
	for _, r := range policy.Registry {
		rec := &keyRecorder{}
		r.DefaultConfig().Configure(rec)
		sec := regexp.MustCompile(`(?ms)^  ` + regexp.QuoteMeta(r.Name()) + `:\n((?:    .*\n|\s*#.*\n)*)`).FindStringSubmatch(text)
		if sec == nil {
			t.Errorf("%s: remedy %s has no section under remedies:", examplePath, r.Name())
			continue
		}
		for _, k := range rec.keys {
			if !regexp.MustCompile(`(?m)^    ` + regexp.QuoteMeta(k) + `:`).MatchString(sec[1]) {
				t.Errorf("%s: remedies.%s.%s is not in the example", examplePath, r.Name(), k)
			}
		}
		if len(rec.keys) < 3 {
			t.Errorf("remedy %s reads only %q; every remedy has enabled, cooldown and max_per_hour", r.Name(), rec.keys)
		}
	}
}

// keyRecorder is a policy.Params that only notes which keys are read.
type keyRecorder struct{ keys []string }

func (k *keyRecorder) Bool(key string, _ *bool)        { k.keys = append(k.keys, key) }
func (k *keyRecorder) Int(key string, _ *int, _ int)   { k.keys = append(k.keys, key) }
func (k *keyRecorder) Positive(key string, _ *float64) { k.keys = append(k.keys, key) }
func (k *keyRecorder) Duration(key string, _ *time.Duration, _ time.Duration) {
	k.keys = append(k.keys, key)
}
func (k *keyRecorder) Size(key string, _ *int64)      { k.keys = append(k.keys, key) }
func (k *keyRecorder) Problem(string, string, ...any) {}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.pass")
	for _, tc := range []struct {
		name string
		doc  string
		// want are substrings; each must be in a distinct problem, and there must be
		// exactly len(want) problems.
		want []string
	}{
		{
			name: "unknown top-level key",
			doc:  "interval: 1s\nintervall: 2s\n",
			want: []string{"intervall: unknown key (line 2)"},
		},
		{
			name: "unknown nested key",
			doc:  "thresholds:\n  fragmentaton_ratio: 2\n",
			want: []string{"thresholds.fragmentaton_ratio: unknown key (line 2)"},
		},
		{
			name: "unknown key in the second instance",
			doc:  "instances:\n  - addr: a:1\n  - addr: b:2\n    pasword_file: /x\n",
			want: []string{"instances[1].pasword_file: unknown key (line 4)"},
		},
		{
			name: "unknown key beside inline limits",
			doc:  "remedies:\n  stop_writes:\n    enabled: true\n    enable: false\n",
			want: []string{"remedies.stop_writes.enable: unknown key"},
		},
		{
			name: "unknown key in an instance's tls",
			doc:  "instances:\n  - addr: a:1\n    tls:\n      ca_file: /x\n",
			want: []string{"instances[0].tls.ca_file: unknown key"},
		},
		{
			name: "several unknown keys are all listed",
			doc:  "intervall: 1s\nthresholds:\n  swap: 1\ninstances:\n  - adr: a:1\n",
			// The typo'd addr also leaves addr missing: both are reported, at once.
			want: []string{"intervall: unknown key", "thresholds.swap: unknown key", "instances[0].adr: unknown key", "instances[0].addr: required"},
		},
		{
			name: "several validation problems are all listed",
			doc:  "interval: 1x\nmode: yolo\nstate_dir: relative\nmetrics_listen: nohost\ninstances:\n  - addr: nohost\n  - addr: b:2\n    host_checks: maybe\n",
			want: []string{
				`interval: "1x" is not a duration`,
				`mode: "yolo" is not one of enforce, dry-run`,
				`state_dir: "relative" must be an absolute path`,
				`metrics_listen: "nohost" is not host:port`,
				`instances[0].addr: "nohost" is not host:port`,
				`instances[1].host_checks: "maybe" is not one of auto, on, off`,
			},
		},
		{name: "max_concurrent differs between instances",
			doc:  "instances:\n  - addr: a:1\n  - addr: b:2\n    remedies:\n      fork_budget:\n        max_concurrent: 2\n  - addr: c:3\n    remedies:\n      fork_budget:\n        enabled: false\n        max_concurrent: 3\n",
			want: []string{"instances[1].remedies.fork_budget.max_concurrent: 2 differs from instances[0]'s 1: the host's fork slots are one budget, every instance must count the same slots"}},
		{name: "relative runtime dir", doc: "runtime_dir: run\n", want: []string{`runtime_dir: "run" must be an absolute path`}},
		{name: "bad duration", doc: "interval: 1x\n", want: []string{`interval: "1x" is not a duration`}},
		{name: "duration without unit", doc: "interval: 1\n", want: []string{`interval: "1" is not a duration`}},
		{name: "interval below minimum", doc: "interval: 1ms\n", want: []string{"interval: 1ms is below the minimum 10ms"}},
		{name: "bad nested duration", doc: "timeouts:\n  command: soon\n", want: []string{`timeouts.command: "soon" is not a duration`}},
		{name: "bad threshold size", doc: "thresholds:\n  aof_buffer_bytes: lots\n", want: []string{`thresholds.aof_buffer_bytes: "lots" is not a size`}},
		{name: "threshold percent out of range", doc: "thresholds:\n  disk_used_percent: 120\n", want: []string{"thresholds.disk_used_percent: 120 must be a percentage"}},
		{name: "threshold ratio zero", doc: "thresholds:\n  fragmentation_ratio: 0\n", want: []string{"thresholds.fragmentation_ratio: 0 must be greater than 0"}},
		{name: "bad addr without port", doc: "instances:\n  - addr: localhost\n", want: []string{`instances[0].addr: "localhost" is not host:port`}},
		{name: "bad addr port", doc: "instances:\n  - addr: localhost:70000\n", want: []string{`instances[0].addr: "localhost:70000": port "70000"`}},
		{name: "bad addr no host", doc: "instances:\n  - addr: \":6379\"\n", want: []string{`instances[0].addr: ":6379": missing host`}},
		{name: "IPv6 without brackets", doc: "instances:\n  - addr: \"::1:6379\"\n", want: []string{`instances[0].addr: "::1:6379" is not host:port ([host]:port for IPv6)`}},
		{name: "missing addr", doc: "instances:\n  - name: x\n", want: []string{"instances[0].addr: required"}},
		{name: "relative socket path", doc: "instances:\n  - addr: redis.sock\n", want: []string{`instances[0].addr: "redis.sock" is not host:port`}},
		{
			name: "duplicate names",
			doc:  "instances:\n  - {name: a, addr: 'h1:1'}\n  - {name: a, addr: 'h2:1'}\n",
			want: []string{`instances[1].name: "a" is already used by instances[0]`},
		},
		{
			name: "duplicate derived names",
			doc:  "instances:\n  - addr: 127.0.0.1:6379\n  - addr: 127.0.0.1:6379\n",
			want: []string{`instances[1].name: "127.0.0.1_6379" is already used by instances[0]`},
		},
		{name: "bad name", doc: "instances:\n  - {name: 'my redis', addr: 'h:1'}\n", want: []string{`instances[0].name: "my redis" must be 1-64 characters`}},
		{name: "bad mode", doc: "mode: dryrun\n", want: []string{`mode: "dryrun" is not one of enforce, dry-run`}},
		{name: "unknown ignored finding", doc: "ignore_findings: [maxmemory_unset, thp]\n", want: []string{`ignore_findings[1]: "thp" is not a finding id`}},
		{
			name: "unknown ignored finding in an instance",
			doc:  "instances:\n  - addr: h:1\n    ignore_findings: [swap]\n",
			want: []string{`instances[0].ignore_findings[0]: "swap" is not a finding id`},
		},
		{name: "password and password_file", doc: "instances:\n  - {addr: 'h:1', password: x, password_file: " + missing + "}\n",
			want: []string{"instances[0].password: set either password or password_file, not both", "instances[0].password_file: cannot read the file named there"}},
		{name: "missing password_file", doc: "instances:\n  - {addr: 'h:1', password_file: " + missing + "}\n", want: []string{"instances[0].password_file: cannot read the file named there (no such file or directory)"}},
		{name: "password_file is a directory", doc: "instances:\n  - {addr: 'h:1', password_file: " + dir + "}\n", want: []string{"instances[0].password_file: the file named there is a directory, not a regular file"}},
		// YAML reads .nan and .inf as floats; a NaN threshold compares false with
		// everything, so its finding could never fire.
		{name: "threshold percent NaN", doc: "thresholds:\n  maxmemory_used_percent: .nan\n", want: []string{"thresholds.maxmemory_used_percent: NaN is not a finite number"}},
		{name: "threshold ratio NaN", doc: "thresholds:\n  fragmentation_ratio: .NaN\n", want: []string{"thresholds.fragmentation_ratio: NaN is not a finite number"}},
		{name: "threshold ratio +Inf", doc: "thresholds:\n  aof_growth_ratio: .inf\n", want: []string{"thresholds.aof_growth_ratio: +Inf is not a finite number"}},
		{name: "threshold percent -Inf", doc: "thresholds:\n  disk_used_percent: -.inf\n", want: []string{"thresholds.disk_used_percent: -Inf is not a finite number"}},
		{name: "instance threshold NaN", doc: "instances:\n  - addr: h:1\n    thresholds: {maxmemory_used_percent: .nan}\n", want: []string{"instances[0].thresholds.maxmemory_used_percent: NaN is not a finite number"}},
		{name: "remedy number NaN", doc: "remedies:\n  rewrite_deferral: {high_ops: .nan}\n", want: []string{"remedies.rewrite_deferral.high_ops: NaN is not a finite number"}},
		{name: "tls cert without key", doc: "instances:\n  - addr: h:1\n    tls: {cert: " + missing + "}\n",
			want: []string{"instances[0].tls: cert and key must be given together", "instances[0].tls.cert: stat " + missing}},
		{name: "empty config_command", doc: "instances:\n  - {addr: 'h:1', config_command: ''}\n", want: []string{`instances[0].config_command: "" must be the single word`}},
		{name: "max_per_hour zero", doc: "remedies:\n  bgsave_retry:\n    max_per_hour: 0\n", want: []string{"remedies.bgsave_retry.max_per_hour: 0 must be at least 1"}},
		{name: "max_backoff below initial", doc: "remedies:\n  bgsave_retry:\n    initial_backoff: 10s\n    max_backoff: 1s\n", want: []string{"remedies.bgsave_retry.max_backoff: 1s is below initial_backoff 10s"}},
		{name: "low_ops above high_ops", doc: "instances:\n  - addr: h:1\n    remedies:\n      rewrite_deferral: {low_ops: 500, high_ops: 100}\n", want: []string{"instances[0].remedies.rewrite_deferral.low_ops: 500 is above high_ops 100"}},
		{name: "oom_relief give_back_below 100", doc: "remedies:\n  oom_relief: {give_back_below: 100}\n", want: []string{"remedies.oom_relief.give_back_below: must be under 100 (percent of the original maxmemory), is 100"}},
		{name: "oom_relief step above max_raise", doc: "remedies:\n  oom_relief: {max_raise: 10, step: 20}\n", want: []string{"remedies.oom_relief.step: must not be above max_raise (10%), is 20%"}},
		{name: "oom_relief max_raise zero", doc: "remedies:\n  oom_relief: {max_raise: 0}\n", want: []string{"remedies.oom_relief.max_raise: 0"}},
		{name: "wrong type", doc: "interval: [1s]\n", want: []string{"cannot unmarshal"}},
		{name: "not a mapping", doc: "- a\n- b\n", want: []string{"cannot unmarshal"}},
		{name: "bad yaml", doc: "interval: 1s\n  mode: x\n", want: []string{"yaml:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parse(t, tc.doc)
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want problems %q", c, tc.want)
			}
			got := problems(t, err)
			if len(got) != len(tc.want) {
				t.Errorf("got %d problems %q, want %d like %q", len(got), got, len(tc.want), tc.want)
			}
			used := make([]bool, len(got))
		want:
			for _, w := range tc.want {
				for i, g := range got {
					if !used[i] && strings.Contains(g, w) {
						used[i] = true
						continue want
					}
				}
				t.Errorf("no problem contains %q; problems:\n  %s", w, strings.Join(got, "\n  "))
			}
			// The message lists every problem, so an operator sees them all at once.
			for _, g := range got {
				if !strings.Contains(err.Error(), g) {
					t.Errorf("Error() %q does not include problem %q", err.Error(), g)
				}
			}
		})
	}
}

func TestParseThresholdOverrides(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
thresholds:
  swap_bytes: 4mb
instances:
  - name: a
    addr: h:1
  - name: b
    addr: h:2
    thresholds:
      disk_used_percent: 97
      fork_slow: 2s
    remedies:
      stop_writes:
        enabled: false
  - name: c
    addr: h:3
`)
	global := policy.DefaultThresholds()
	global.SwapBytes = 4 << 20
	b := global
	b.DiskUsedPercent = 97
	b.ForkSlow = 2 * time.Second
	remB := policy.DefaultRemedies()
	policy.ConfigOf[*policy.StopWritesConfig](remB).Enabled = false

	want := map[string]struct {
		thr policy.Thresholds
		rem policy.Remedies
	}{
		"a": {global, policy.DefaultRemedies()},
		"b": {b, remB},
		"c": {global, policy.DefaultRemedies()},
	}
	for _, in := range c.Instances {
		w := want[in.Name]
		if diff := cmp.Diff(w.thr, in.Thresholds); diff != "" {
			t.Errorf("instance %s thresholds (-want +got):\n%s", in.Name, diff)
		}
		if diff := cmp.Diff(w.rem, in.Remedies); diff != "" {
			t.Errorf("instance %s remedies (-want +got):\n%s", in.Name, diff)
		}
	}
}

func TestParseWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	private := writeFile(t, filepath.Join(dir, "private.pass"), "pw\n", 0o600)
	group := writeFile(t, filepath.Join(dir, "group.pass"), "pw\n", 0o640)
	world := writeFile(t, filepath.Join(dir, "world.pass"), "pw\n", 0o644)
	for _, tc := range []struct {
		name string
		doc  string
		want []string // substrings, one per warning, in order
	}{
		{name: "password_file 0600", doc: "instances:\n  - {addr: 'h:1', password_file: " + private + "}\n"},
		{name: "password_file 0640", doc: "instances:\n  - {addr: 'h:1', password_file: " + group + "}\n"},
		{
			name: "password_file 0644",
			doc:  "instances:\n  - {addr: 'h:1', password_file: " + world + "}\n",
			want: []string{"instances[0].password_file: " + world + " is readable by other users (mode 0644)"},
		},
		{
			name: "inline password",
			doc:  "instances:\n  - {addr: 'h:1'}\n  - {addr: 'h:2', password: hunter2}\n",
			want: []string{"instances[1].password: written inline in the config; prefer password_file"},
		},
		{
			name: "password in a redis URL",
			doc:  "instances:\n  - addr: redis://user:hunter2@h:1/0\n",
			want: []string{"instances[0].addr: the URL carries a password"},
		},
		{name: "user only in a redis URL", doc: "instances:\n  - addr: redis://user@h:1/0\n"},
		{
			name: "insecure tls",
			doc:  "instances:\n  - addr: h:1\n    tls: {insecure_skip_verify: true}\n",
			want: []string{"instances[0].tls.insecure_skip_verify: the server certificate is not verified"},
		},
		{
			name: "skip_verify in a rediss URL",
			doc:  "instances:\n  - addr: rediss://h:1?skip_verify=true\n",
			want: []string{"instances[0].addr: skip_verify=true: the server certificate is not verified"},
		},
		{
			name: "skip_verify=1 and a password in a rediss URL",
			doc:  "instances:\n  - addr: rediss://u:hunter2@h:1?skip_verify=1\n",
			want: []string{"instances[0].addr: the URL carries a password", "instances[0].addr: skip_verify=1: the server certificate is not verified"},
		},
		{name: "skip_verify=false", doc: "instances:\n  - addr: rediss://h:1?skip_verify=false\n"},
		{
			name: "metrics on every interface, IPv4",
			doc:  "metrics_listen: 0.0.0.0:9637\n",
			want: []string{"metrics_listen: 0.0.0.0:9637 listens on every interface: /metrics, /-/status, /-/healthy and /-/ready answer anyone who can reach it, without authentication"},
		},
		{
			name: "metrics on every interface, IPv6",
			doc:  "metrics_listen: '[::]:9637'\n",
			want: []string{"metrics_listen: [::]:9637 listens on every interface"},
		},
		{name: "metrics on loopback", doc: "metrics_listen: 127.0.0.1:9100\n"},
		{name: "metrics on one address", doc: "metrics_listen: 10.1.2.3:9100\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, tc.doc)
			if len(c.Warnings) != len(tc.want) {
				t.Fatalf("warnings %q, want %d like %q", c.Warnings, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(c.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, c.Warnings[i], w)
				}
			}
			for _, w := range c.Warnings {
				if strings.Contains(w, "hunter2") {
					t.Errorf("warning %q prints the password", w)
				}
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "10b", want: 10},
		{in: "1k", want: 1 << 10},
		{in: "512kb", want: 512 << 10},
		{in: "2KiB", want: 2 << 10},
		{in: "10mb", want: 10 << 20},
		{in: "10M", want: 10 << 20},
		{in: "3mib", want: 3 << 20},
		{in: "1gb", want: 1 << 30},
		{in: "1G", want: 1 << 30},
		{in: "4gib", want: 4 << 30},
		{in: " 7 mb ", want: 7 << 20},
		{in: "8589934591gb", want: 1<<63 - 1<<30}, // the largest whole-gb size that fits
		{in: "", wantErr: true},
		{in: "mb", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-1kb", wantErr: true},
		{in: "1.5gb", wantErr: true},
		{in: "10tb", wantErr: true},
		{in: "ten", wantErr: true},
		{in: "1e6", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
		{in: "8589934592gb", wantErr: true}, // 2^63: overflows int64
		{in: "9999999999999gb", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSize(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseSize(%q) = %d, want an error", tc.in, got)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q is not a size", tc.in)) {
					t.Errorf("error %q does not quote the input", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSize(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		p := filepath.Join(dir, "absent.yaml")
		_, err := Load(p)
		if err == nil {
			t.Fatal("Load of a missing file succeeded")
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %s", err, p)
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %q does not wrap os.ErrNotExist", err)
		}
	})
	t.Run("invalid file", func(t *testing.T) {
		t.Parallel()
		p := writeFile(t, filepath.Join(dir, "bad.yaml"), "interval: 1x\n", 0o644)
		_, err := Load(p)
		if err == nil {
			t.Fatal("Load of an invalid file succeeded")
		}
		if !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), "interval:") {
			t.Errorf("error %q does not name the file and the key", err)
		}
		problems(t, err) // still a *ValidationError underneath
	})
	t.Run("valid file", func(t *testing.T) {
		t.Parallel()
		p := writeFile(t, filepath.Join(dir, "ok.yaml"), "interval: 5s\n", 0o644)
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Interval != 5*time.Second {
			t.Errorf("Interval = %s, want 5s", c.Interval)
		}
	})
}

func TestApply(t *testing.T) {
	t.Parallel()
	two := "instances:\n  - addr: h:1\n  - addr: h:2\n"
	for _, tc := range []struct {
		name    string
		doc     string
		o       Overrides
		wantErr string
		// edit turns the parsed config into the expected one.
		edit func(c *Config)
	}{
		{name: "no overrides", edit: func(*Config) {}},
		{
			name: "addr replaces the default instance and its derived name",
			o:    Overrides{Addr: "10.1.2.3:6380"},
			edit: func(c *Config) { c.Instances[0].Addr, c.Instances[0].Name = "10.1.2.3:6380", "10.1.2.3_6380" },
		},
		{
			name: "socket addr names the default instance by the socket's file",
			o:    Overrides{Addr: "/run/redis/redis-server.sock"},
			edit: func(c *Config) {
				c.Instances[0].Addr, c.Instances[0].Name = "/run/redis/redis-server.sock", "redis-server"
			},
		},
		{
			name: "addr keeps an explicit name",
			doc:  "instances:\n  - {name: main, addr: 'h:1'}\n",
			o:    Overrides{Addr: "/run/redis.sock"},
			edit: func(c *Config) { c.Instances[0].Addr = "/run/redis.sock" },
		},
		{name: "addr refused with two instances", doc: two, o: Overrides{Addr: "h:3"}, wantErr: "--addr: the config file lists 2 instances"},
		{name: "bad addr", o: Overrides{Addr: "localhost"}, wantErr: `--addr: "localhost" is not host:port`},
		{name: "bad addr port", o: Overrides{Addr: "h:0"}, wantErr: `--addr: "h:0": port "0"`},
		{
			name: "interval",
			o:    Overrides{Interval: 250 * time.Millisecond},
			edit: func(c *Config) { c.Interval = 250 * time.Millisecond },
		},
		{name: "interval too small", o: Overrides{Interval: time.Millisecond}, wantErr: "--interval: 1ms is below the minimum 10ms"},
		{name: "negative interval", o: Overrides{Interval: -time.Second}, wantErr: "--interval:"},
		{name: "dry-run", o: Overrides{DryRun: true}, edit: func(c *Config) { c.Mode = ModeDryRun }},
		{name: "dry-run false keeps the file's mode", doc: "mode: dry-run\n", edit: func(*Config) {}},
		{name: "state dir", o: Overrides{StateDir: "/tmp/g"}, edit: func(c *Config) { c.StateDir = "/tmp/g" }},
		{name: "relative state dir", o: Overrides{StateDir: "g"}, wantErr: `--state-dir: "g" must be an absolute path`},
		{name: "metrics off", o: Overrides{MetricsListen: ptr("")}, edit: func(c *Config) { c.MetricsListen = "" }},
		{
			name: "metrics everywhere",
			o:    Overrides{MetricsListen: ptr("0.0.0.0:9100")},
			edit: func(c *Config) {
				c.MetricsListen = "0.0.0.0:9100"
				c.Warnings = []string{metricsWildcardWarning("--metrics-listen", "0.0.0.0:9100")}
			},
		},
		{
			name: "metrics flag replaces the file's wildcard and its warning",
			doc:  "metrics_listen: 0.0.0.0:9100\n",
			o:    Overrides{MetricsListen: ptr("127.0.0.1:9100")},
			edit: func(c *Config) { c.MetricsListen, c.Warnings = "127.0.0.1:9100", nil },
		},
		{
			name: "addr with a password is warned about: ps shows it",
			o:    Overrides{Addr: "redis://u:hunter2@10.1.2.3:6380"},
			edit: func(c *Config) {
				c.Instances[0].Addr, c.Instances[0].Name = "redis://u:hunter2@10.1.2.3:6380", "10.1.2.3_6380"
				c.Warnings = []string{"--addr: the URL carries a password, which every local user can read in ps (/proc/PID/cmdline); prefer password_file with mode 0600 in the config file"}
			},
		},
		{
			name: "addr with skip_verify replaces the file's addr warnings",
			doc:  "instances:\n  - {name: main, addr: 'redis://u:hunter2@h:1'}\n",
			o:    Overrides{Addr: "rediss://h:2?skip_verify=true"},
			edit: func(c *Config) {
				c.Instances[0].Addr = "rediss://h:2?skip_verify=true"
				c.Warnings = []string{"--addr: skip_verify=true: the server certificate is not verified"}
			},
		},
		{name: "metrics without host", o: Overrides{MetricsListen: ptr(":9100")}, wantErr: `--metrics-listen: ":9100" has no host`},
		{name: "metrics bad port", o: Overrides{MetricsListen: ptr("localhost:http")}, wantErr: `--metrics-listen: "localhost:http": port "http" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, tc.doc)
			want := mustParse(t, tc.doc)
			err := c.Apply(tc.o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Apply(%+v) = %v, want an error containing %q", tc.o, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply(%+v): %v", tc.o, err)
			}
			tc.edit(want)
			if diff := cmp.Diff(want, c, equateEmpty); diff != "" {
				t.Errorf("Apply(%+v) mismatch (-want +got):\n%s", tc.o, diff)
			}
		})
	}
}

func TestIgnoreSet(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "ignore_findings: [thp_enabled]\ninstances:\n  - addr: h:1\n    ignore_findings: [swapping]\n")
	want := map[string]bool{"thp_enabled": true, "swapping": true}
	if diff := cmp.Diff(want, c.Instances[0].IgnoreSet()); diff != "" {
		t.Errorf("IgnoreSet (-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }

// TestAddrErrorsHideThePassword: an address that does not parse is named in the
// problem, which check prints to the monitoring system and a reload to the
// journal; the parser's own error quotes the URL whole, and can quote a piece of
// a password that breaks the URL. No piece of the password may be printed.
func TestAddrErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		addr string
		// secrets must appear in no error; want is a substring of each.
		secrets []string
		want    string
	}{
		{
			name:    "bad port",
			addr:    "redis://u:hunter2@127.0.0.1:port",
			secrets: []string{"hunter2"},
			want:    `redis://u:xxxxx@127.0.0.1:port: parse address URL: parse "redis://u:xxxxx@127.0.0.1:port": invalid port ":port" after host`,
		},
		{
			name:    "password only, bad port",
			addr:    "rediss://:hunter2@[::1]:99999x",
			secrets: []string{"hunter2"},
			want:    `rediss://:xxxxx@[::1]:99999x`,
		},
		{
			name:    "bad database in the path",
			addr:    "redis://u:hunter2@h:1/zero",
			secrets: []string{"hunter2"},
			want:    `invalid database number: "zero"`,
		},
		{
			// url.Parse ends the host at '/': `invalid port ":hun" after host`.
			name:    "unescaped slash in the password",
			addr:    "redis://u:hun/ter2@h:1",
			secrets: []string{"hun", "ter2"},
			want:    "percent-encode / ? # % @ : in the password",
		},
		{
			// The host ends at '/' and a numeric piece passes as a port; go-redis
			// then quotes the rest as a database number.
			name:    "password piece taken for a database",
			addr:    "redis://u:12/x9q@h:1",
			secrets: []string{"x9q"},
			want:    "percent-encode",
		},
		{
			name:    "bad escape in the password",
			addr:    "redis://u:pw%zzsecret@h:1",
			secrets: []string{"%zz", "secret"},
			want:    "percent-encode",
		},
		{
			name:    "credentials without a scheme",
			addr:    "u:hunter2@127.0.0.1:6379",
			secrets: []string{"hunter2"},
			want:    `"xxxxx@127.0.0.1:6379" is not host:port: credentials go in a redis:// URL`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(strings.NewReader(fmt.Sprintf("instances:\n  - addr: %q\n", tc.addr)))
			if err == nil {
				t.Fatalf("Parse accepted addr %q", tc.addr)
			}
			flagErr := Default().Apply(Overrides{Addr: tc.addr})
			if flagErr == nil {
				t.Fatalf("Apply accepted --addr %q", tc.addr)
			}
			for _, e := range []error{err, flagErr} {
				msg := e.Error()
				if !strings.Contains(msg, tc.want) {
					t.Errorf("error %q does not contain %q", msg, tc.want)
				}
				for _, s := range tc.secrets {
					if strings.Contains(msg, s) {
						t.Errorf("error %q prints %q, a piece of the password", msg, s)
					}
				}
			}
		})
	}
}

// TestPasswordFileValueNotEchoed: a password written where the path of its file
// goes must not be printed back in the "no such file" problem.
func TestPasswordFileValueNotEchoed(t *testing.T) {
	t.Parallel()
	_, err := Parse(strings.NewReader("instances:\n  - {addr: 'h:1', password_file: 'S3cr3t-hunter2'}\n"))
	if err == nil {
		t.Fatal("Parse accepted a password_file that does not exist")
	}
	if strings.Contains(err.Error(), "S3cr3t-hunter2") {
		t.Errorf("the problem prints the value of password_file: %q", err)
	}
	if !strings.Contains(err.Error(), "instances[0].password_file: cannot read the file named there (no such file or directory)") {
		t.Errorf("the problem does not name the key and the reason: %q", err)
	}
}

func TestPasswordFileMustBeRegular(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "pass.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Parse(strings.NewReader("instances:\n  - {addr: 'h:1', password_file: '" + fifo + "'}\n"))
	if err == nil || !strings.Contains(err.Error(), "instances[0].password_file: the file named there is a FIFO, not a regular file") {
		t.Errorf("Parse with a FIFO as password_file = %v, want it refused", err)
	}
}

func TestWildcardListen(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		":9637": true, "0.0.0.0:9637": true, "[::]:9637": true, "[0:0:0:0:0:0:0:0]:1": true,
		"127.0.0.1:9637": false, "[::1]:9637": false, "localhost:9637": false, "10.0.0.1:1": false, "": false, "junk": false,
	} {
		if got := WildcardListen(addr); got != want {
			t.Errorf("WildcardListen(%q) = %v, want %v", addr, got, want)
		}
	}
	if w := PprofWildcardWarning(":6060"); !strings.Contains(w, "--pprof-listen: :6060 listens on every interface") {
		t.Errorf("PprofWildcardWarning(:6060) = %q", w)
	}
	if w := PprofWildcardWarning("127.0.0.1:6060"); w != "" {
		t.Errorf("PprofWildcardWarning(127.0.0.1:6060) = %q, want none", w)
	}
}
