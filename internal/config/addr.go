package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// addr checks an instance's address, and says what a valid one still deserves a
// word about.
func (v *validator) addr(path, addr string) {
	if addr == "" {
		v.addf(path, "required: host:port, a unix socket path, or a redis:// or rediss:// URL")
		return
	}
	if err := checkAddr(addr); err != nil {
		v.addf(path, "%v", err)
		return
	}
	v.warn(addrWarnings(path, addr, false)...)
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
	// Not even a socket path: no client dials it as meant, and it would go into
	// the journal and the metrics labels as it is. The address is not echoed: a
	// URL holds the password.
	if i := strings.IndexFunc(addr, unicode.IsControl); i >= 0 {
		return fmt.Errorf("the address holds a control character (at byte %d)", i)
	}
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
	if strings.IndexFunc(host, unicode.IsSpace) >= 0 {
		return fmt.Errorf("%q: a host name holds no space", addr)
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
