package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"go.yaml.in/yaml/v3"
)

// The raw types mirror the YAML. Durations and sizes stay strings until validation
// so a bad value is reported with its path, and optional values are pointers so a
// per-instance override can tell "not set" from "set to zero".
type rawConfig struct {
	Interval      *string        `yaml:"interval"`
	Timeouts      *rawTimeouts   `yaml:"timeouts"`
	ConfigRefresh *string        `yaml:"config_refresh"`
	InfoRefresh   *string        `yaml:"info_refresh"`
	FastPoll      *string        `yaml:"fast_poll"`
	Mode          *string        `yaml:"mode"`
	StateDir      *string        `yaml:"state_dir"`
	MetricsListen *string        `yaml:"metrics_listen"`
	Thresholds    *rawThresholds `yaml:"thresholds"`
	Remedies      yaml.Node      `yaml:"remedies"`
	Ignore        []string       `yaml:"ignore_findings"`
	Instances     []rawInstance  `yaml:"instances"`
	Preflight     *rawPreflight  `yaml:"preflight"`
}

type rawPreflight struct {
	FixTruncatedTail *bool   `yaml:"fix_truncated_tail"`
	MaxTruncateBytes *string `yaml:"max_truncate_bytes"`
}

type rawTimeouts struct {
	Connect *string `yaml:"connect"`
	Command *string `yaml:"command"`
}

type rawInstance struct {
	Name          string         `yaml:"name"`
	Addr          string         `yaml:"addr"`
	Username      string         `yaml:"username"`
	Password      string         `yaml:"password"`
	PasswordFile  string         `yaml:"password_file"`
	TLS           *rawTLS        `yaml:"tls"`
	ConfigCommand *string        `yaml:"config_command"`
	HostChecks    *string        `yaml:"host_checks"`
	LogFile       string         `yaml:"log_file"`
	Ignore        []string       `yaml:"ignore_findings"`
	Thresholds    *rawThresholds `yaml:"thresholds"`
	Remedies      yaml.Node      `yaml:"remedies"`
}

type rawTLS struct {
	CA                 string `yaml:"ca"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

type rawThresholds struct {
	FragmentationRatio    *float64 `yaml:"fragmentation_ratio"`
	FragmentationMinBytes *string  `yaml:"fragmentation_min_bytes"`
	MaxmemoryUsedPercent  *float64 `yaml:"maxmemory_used_percent"`
	AOFGrowthRatio        *float64 `yaml:"aof_growth_ratio"`
	AOFBufferBytes        *string  `yaml:"aof_buffer_bytes"`
	DiskUsedPercent       *float64 `yaml:"disk_used_percent"`
	ForkSlow              *string  `yaml:"fork_slow"`
	CgroupForkFactor      *float64 `yaml:"cgroup_fork_factor"`
	ForkHeadroomFactor    *float64 `yaml:"fork_headroom_factor"`
	SwapBytes             *string  `yaml:"swap_bytes"`
	ReplLinkDownGrace     *string  `yaml:"repl_link_down_grace"`
	StaleTempMinAge       *string  `yaml:"stale_temp_min_age"`
}

type validator struct {
	problems []string
	warnings []string
}

func (v *validator) addf(path, format string, args ...any) {
	v.problems = append(v.problems, path+": "+fmt.Sprintf(format, args...))
}

func typeOf(x any) reflect.Type { return reflect.TypeOf(x) }

// checkKeys walks the document against the raw types and reports every key that
// the guardian does not know, with its full path and line.
func (v *validator) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(yaml.Node{}) {
		return // a section read by its owner (remedies), which reports its own unknown keys
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			v.checkKeys(c, t, path)
		}
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return // a type mismatch; Decode reports it
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				v.problems = append(v.problems, fmt.Sprintf("%s: unknown key (line %d)", p, k.Line))
				continue
			}
			v.checkKeys(val, ft, p)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, c := range n.Content {
			v.checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// yamlFields maps yaml key names to field types, following inline embeddings.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for k, ft := range yamlFields(f.Type) {
				out[k] = ft
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (r *rawConfig) validate() (*Config, error) {
	v := &validator{}
	c := &Config{
		Interval:      time.Second,
		Timeouts:      Timeouts{Connect: 2 * time.Second, Command: time.Second},
		ConfigRefresh: time.Minute,
		InfoRefresh:   DefaultInfoRefresh,
		FastPoll:      DefaultFastPoll,
		Mode:          ModeEnforce,
		StateDir:      "/var/lib/redis-guardian",
		MetricsListen: DefaultMetricsListen,
	}
	v.duration("interval", r.Interval, &c.Interval, MinInterval)
	v.duration("config_refresh", r.ConfigRefresh, &c.ConfigRefresh, time.Second)
	v.duration("info_refresh", r.InfoRefresh, &c.InfoRefresh, 0)
	v.duration("fast_poll", r.FastPoll, &c.FastPoll, 0)
	if c.FastPoll > 0 && c.FastPoll < MinInterval {
		v.addf("fast_poll", "%s is below the minimum %s (0 turns close polling off)", c.FastPoll, MinInterval)
	}
	if r.Timeouts != nil {
		v.duration("timeouts.connect", r.Timeouts.Connect, &c.Timeouts.Connect, time.Millisecond)
		v.duration("timeouts.command", r.Timeouts.Command, &c.Timeouts.Command, time.Millisecond)
	}
	if r.Mode != nil {
		switch Mode(*r.Mode) {
		case ModeEnforce, ModeDryRun:
			c.Mode = Mode(*r.Mode)
		default:
			v.addf("mode", "%q is not one of enforce, dry-run", *r.Mode)
		}
	}
	if r.StateDir != nil {
		if err := checkStateDir(*r.StateDir); err != nil {
			v.addf("state_dir", "%v", err)
		} else {
			c.StateDir = *r.StateDir
		}
	}

	if r.MetricsListen != nil {
		if err := checkListen(*r.MetricsListen); err != nil {
			v.addf("metrics_listen", "%v", err)
		} else {
			c.MetricsListen = *r.MetricsListen
			if w := metricsWildcardWarning("metrics_listen", c.MetricsListen); w != "" {
				v.warnings = append(v.warnings, w)
			}
		}
	}

	c.Preflight = Preflight{MaxTruncateBytes: 1 << 20}
	if p := r.Preflight; p != nil {
		if p.FixTruncatedTail != nil {
			c.Preflight.FixTruncatedTail = *p.FixTruncatedTail
		}
		if p.MaxTruncateBytes != nil {
			n, err := ParseSize(*p.MaxTruncateBytes)
			switch {
			case err != nil:
				v.addf("preflight.max_truncate_bytes", "%v", err)
			case n <= 0:
				v.addf("preflight.max_truncate_bytes", "%q: want a size above 0", *p.MaxTruncateBytes)
			default:
				c.Preflight.MaxTruncateBytes = n
			}
		}
	}

	thr := policy.DefaultThresholds()
	v.thresholds("thresholds", r.Thresholds, &thr)
	rem := policy.DefaultRemedies()
	v.remedies("remedies", &r.Remedies, rem)
	v.ignore("ignore_findings", r.Ignore)

	insts := r.Instances
	if len(insts) == 0 {
		insts = []rawInstance{{Addr: DefaultAddr}}
	}
	names := map[string]int{}
	for i, ri := range insts {
		p := fmt.Sprintf("instances[%d]", i)
		in := Instance{
			Name: ri.Name, Addr: ri.Addr, Username: ri.Username, Password: ri.Password,
			PasswordFile: ri.PasswordFile, ConfigCommand: "CONFIG", HostChecks: monitor.HostChecksAuto,
			LogFile: ri.LogFile, Thresholds: thr,
		}
		if in.Addr == "" {
			v.addf(p+".addr", "required: host:port, a unix socket path, or a redis:// or rediss:// URL")
		} else if err := checkAddr(in.Addr); err != nil {
			v.addf(p+".addr", "%v", err)
		} else {
			v.warnings = append(v.warnings, addrWarnings(p+".addr", in.Addr, false)...)
		}
		if in.Name == "" {
			in.Name = defaultName(in.Addr, i)
		}
		if !nameRE.MatchString(in.Name) {
			v.addf(p+".name", "%q must be 1-64 characters of A-Z a-z 0-9 _ . - (it names state files and log fields)", in.Name)
		}
		if j, dup := names[in.Name]; dup {
			v.addf(p+".name", "%q is already used by instances[%d]", in.Name, j)
		}
		names[in.Name] = i
		if in.Password != "" && in.PasswordFile != "" {
			v.addf(p+".password", "set either password or password_file, not both")
		}
		if in.Password != "" {
			v.warnings = append(v.warnings, p+".password: written inline in the config; prefer password_file with mode 0600")
		}
		if in.PasswordFile != "" {
			v.passwordFile(p+".password_file", in.PasswordFile)
		}
		if ri.TLS != nil {
			in.TLS = &TLS{CA: ri.TLS.CA, Cert: ri.TLS.Cert, Key: ri.TLS.Key, ServerName: ri.TLS.ServerName, InsecureSkipVerify: ri.TLS.InsecureSkipVerify}
			if (in.TLS.Cert == "") != (in.TLS.Key == "") {
				v.addf(p+".tls", "cert and key must be given together")
			}
			for _, kf := range [][2]string{{"ca", in.TLS.CA}, {"cert", in.TLS.Cert}, {"key", in.TLS.Key}} {
				if kf[1] == "" {
					continue
				}
				if _, err := os.Stat(kf[1]); err != nil {
					v.addf(p+".tls."+kf[0], "%v", err)
				}
			}
			if in.TLS.InsecureSkipVerify {
				v.warnings = append(v.warnings, p+".tls.insecure_skip_verify: the server certificate is not verified")
			}
		}
		if ri.ConfigCommand != nil {
			if *ri.ConfigCommand == "" || strings.ContainsAny(*ri.ConfigCommand, " \t\r\n") {
				v.addf(p+".config_command", "%q must be the single word CONFIG was renamed to", *ri.ConfigCommand)
			} else {
				in.ConfigCommand = *ri.ConfigCommand
			}
		}
		if ri.HostChecks != nil {
			switch hc := monitor.HostChecks(*ri.HostChecks); hc {
			case monitor.HostChecksAuto, monitor.HostChecksOn, monitor.HostChecksOff:
				in.HostChecks = hc
			default:
				v.addf(p+".host_checks", "%q is not one of auto, on, off", *ri.HostChecks)
			}
		}
		v.ignore(p+".ignore_findings", ri.Ignore)
		in.IgnoreFindings = append(append([]string(nil), r.Ignore...), ri.Ignore...)
		v.thresholds(p+".thresholds", ri.Thresholds, &in.Thresholds)
		in.Remedies = rem.Clone()
		v.remedies(p+".remedies", &ri.Remedies, in.Remedies)
		c.Instances = append(c.Instances, in)
	}
	if len(v.problems) > 0 {
		return nil, &ValidationError{Problems: v.problems}
	}
	c.Warnings = v.warnings
	return c, nil
}

// passwordFile checks the file named by password_file. Its value is never echoed
// in a problem: a password written where its file's path goes would otherwise be
// printed on the terminal, by check to the monitoring system and by a reload to
// the journal. A file that is not regular (a FIFO would hang every connect that
// reads it) is refused.
func (v *validator) passwordFile(path, file string) {
	st, err := os.Stat(file)
	if err != nil {
		why := "cannot stat it"
		var pe *fs.PathError
		if errors.As(err, &pe) {
			why = pe.Err.Error()
		}
		v.addf(path, "cannot read the file named there (%s); the value is not shown, in case it is the password itself", why)
		return
	}
	if !st.Mode().IsRegular() {
		v.addf(path, "the file named there is a %s, not a regular file", monitor.FileTypeName(st.Mode()))
		return
	}
	if st.Mode().Perm()&0o004 != 0 {
		v.warnings = append(v.warnings, fmt.Sprintf("%s: %s is readable by other users (mode %04o); chmod 0600 or 0640", path, file, st.Mode().Perm()))
	}
}

func defaultName(addr string, i int) string {
	if strings.HasPrefix(addr, "/") {
		// A socket path: its file name says more than the directories, e.g.
		// /run/redis/redis-server.sock -> redis-server.
		base := addr[strings.LastIndex(addr, "/")+1:]
		if s := strings.TrimSuffix(base, ".sock"); nameRE.MatchString(s) {
			return s
		}
	}
	if i := strings.Index(addr, "://"); i >= 0 {
		// Never let credentials of a URL into a name: names go to logs and files.
		if at := strings.LastIndex(addr, "@"); at > i {
			addr = addr[:i+3] + addr[at+1:]
		}
	}
	s := strings.NewReplacer("redis://", "", "rediss://", "", "unix://", "", "/", "_", ":", "_", "@", "_", "?", "_", "=", "_", "&", "_").Replace(addr)
	s = strings.Trim(s, "_")
	if s == "" || !nameRE.MatchString(s) {
		return fmt.Sprintf("instance%d", i)
	}
	return s
}

func checkAddr(addr string) error {
	switch {
	case strings.HasPrefix(addr, "redis://"), strings.HasPrefix(addr, "rediss://"), strings.HasPrefix(addr, "unix://"):
		if err := monitor.CheckAddr(addr); err != nil {
			// The parser's error quotes the URL, password and all.
			return fmt.Errorf("%s: %w", monitor.RedactAddr(addr), monitor.RedactError(addr, err))
		}
		return nil
	case strings.HasPrefix(addr, "/"):
		return nil
	case strings.Contains(addr, "@"):
		// user:password@host:port without a scheme: not an address, and the part
		// before '@' is likely a password, so it is not echoed.
		return fmt.Errorf("%q is not host:port: credentials go in a redis:// URL (redis://user:password@host:port) or in username and password_file", "xxxxx"+addr[strings.LastIndex(addr, "@"):])
	}
	// net.SplitHostPort, as the client will: an IPv6 host needs brackets.
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port ([host]:port for IPv6), a unix socket path (absolute) or a redis:// URL", addr)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q: missing host", addr)
	}
	return nil
}

// checkPort accepts a decimal TCP port from 1 to 65535.
func checkPort(port string) error {
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

func (v *validator) duration(path string, s *string, dst *time.Duration, min time.Duration) {
	if s == nil {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(*s))
	if err != nil {
		v.addf(path, "%q is not a duration (examples: 500ms, 1s, 5m)", *s)
		return
	}
	if d < min {
		v.addf(path, "%s is below the minimum %s", d, min)
		return
	}
	*dst = d
}

func (v *validator) size(path string, s *string, dst *int64) {
	if s == nil {
		return
	}
	n, err := ParseSize(*s)
	if err != nil {
		v.addf(path, "%v", err)
		return
	}
	*dst = n
}

func (v *validator) positive(path string, f *float64, dst *float64) {
	if f == nil {
		return
	}
	if !finite(path, f, v) {
		return
	}
	if *f <= 0 {
		v.addf(path, "%v must be greater than 0", *f)
		return
	}
	*dst = *f
}

func (v *validator) percent(path string, f *float64, dst *float64) {
	if f == nil {
		return
	}
	if !finite(path, f, v) {
		return
	}
	if *f <= 0 || *f > 100 {
		v.addf(path, "%v must be a percentage in (0, 100]", *f)
		return
	}
	*dst = *f
}

// finite reports whether *f is a finite number, and reports the problem if not:
// YAML accepts .nan and .inf, and a NaN threshold compares false with every value,
// so the finding it guards could never fire.
func finite(path string, f *float64, v *validator) bool {
	if math.IsNaN(*f) || math.IsInf(*f, 0) {
		v.addf(path, "%v is not a finite number", *f)
		return false
	}
	return true
}

// addrWarnings are what an address that is valid still deserves a word about: a
// password in a URL (kept in the config file, and readable by every local user in
// ps when given as --addr: asFlag) and a rediss:// URL whose skip_verify turns
// certificate checks off, as tls.insecure_skip_verify does.
func addrWarnings(path, addr string, asFlag bool) []string {
	if !strings.HasPrefix(addr, "redis://") && !strings.HasPrefix(addr, "rediss://") && !strings.HasPrefix(addr, "unix://") {
		return nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil // checkAddr has accepted it; the client reads it the same way
	}
	var ws []string
	if p, ok := u.User.Password(); ok && p != "" {
		if asFlag {
			ws = append(ws, path+": the URL carries a password, which every local user can read in ps (/proc/PID/cmdline); prefer password_file with mode 0600 in the config file")
		} else {
			ws = append(ws, path+": the URL carries a password; prefer password_file with mode 0600")
		}
	}
	if u.Scheme == "rediss" {
		// go-redis reads the last value, as true or 1.
		if vs := u.Query()["skip_verify"]; len(vs) > 0 && (vs[len(vs)-1] == "true" || vs[len(vs)-1] == "1") {
			ws = append(ws, path+": skip_verify="+vs[len(vs)-1]+": the server certificate is not verified")
		}
	}
	return ws
}

// WildcardListen reports whether a listen address takes every interface: an empty
// or unspecified host (":9637", "0.0.0.0:9637", "[::]:9637").
func WildcardListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// metricsWildcardWarning says that the metrics port on every interface serves
// what it serves to anyone who reaches it: the default (loopback) stays quiet.
func metricsWildcardWarning(path, addr string) string {
	if !WildcardListen(addr) {
		return ""
	}
	return fmt.Sprintf("%s: %s listens on every interface: /metrics, /-/status, /-/healthy and /-/ready answer anyone who can reach it, without authentication (they name instances, addresses and held settings); listen on 127.0.0.1 or firewall the port", path, addr)
}

// ParseSize reads a byte size: a plain number of bytes or a number with a unit
// (k, kb, kib, m, mb, mib, g, gb, gib; case-insensitive; powers of 1024 as Redis does).
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<63-1)/mult { // reject sizes that overflow int64
		return 0, fmt.Errorf("%q is not a size (examples: 1048576, 512kb, 10mb, 1gb)", s)
	}
	return n * mult, nil
}

func (v *validator) thresholds(p string, r *rawThresholds, t *policy.Thresholds) {
	if r == nil {
		return
	}
	v.positive(p+".fragmentation_ratio", r.FragmentationRatio, &t.FragmentationRatio)
	v.size(p+".fragmentation_min_bytes", r.FragmentationMinBytes, &t.FragmentationMinBytes)
	v.percent(p+".maxmemory_used_percent", r.MaxmemoryUsedPercent, &t.MaxmemoryUsedPercent)
	v.positive(p+".aof_growth_ratio", r.AOFGrowthRatio, &t.AOFGrowthRatio)
	v.size(p+".aof_buffer_bytes", r.AOFBufferBytes, &t.AOFBufferBytes)
	v.percent(p+".disk_used_percent", r.DiskUsedPercent, &t.DiskUsedPercent)
	v.duration(p+".fork_slow", r.ForkSlow, &t.ForkSlow, time.Millisecond)
	v.positive(p+".cgroup_fork_factor", r.CgroupForkFactor, &t.CgroupForkFactor)
	v.positive(p+".fork_headroom_factor", r.ForkHeadroomFactor, &t.ForkHeadroomFactor)
	v.size(p+".swap_bytes", r.SwapBytes, &t.SwapBytes)
	v.duration(p+".repl_link_down_grace", r.ReplLinkDownGrace, &t.ReplLinkDownGrace, 0)
	v.duration(p+".stale_temp_min_age", r.StaleTempMinAge, &t.StaleTempMinAge, 0)
}

func (v *validator) ignore(path string, ids []string) {
	for i, id := range ids {
		if !slices.Contains(policy.KnownIDs, id) {
			v.addf(fmt.Sprintf("%s[%d]", path, i), "%q is not a finding id (see the README's table of findings)", id)
		}
	}
}
