package config

import (
	"fmt"
	"net"
)

// checkListen accepts "" (disabled) or host:port with a numeric port; an empty host
// would listen on every interface, which must be said explicitly (0.0.0.0 or [::]).
func checkListen(s string) error {
	if s == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host: write 127.0.0.1:%s for local scrapes, or 0.0.0.0:%s to listen on every interface", s, port, port)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
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

// PprofWildcardWarning is the warning for --pprof-listen on every interface
// (WildcardListen), "" otherwise: profiles, goroutine stacks and the command line
// (which may hold --addr's password) would answer anyone who can reach the port.
func PprofWildcardWarning(addr string) string {
	if !WildcardListen(addr) {
		return ""
	}
	return fmt.Sprintf("--pprof-listen: %s listens on every interface: /debug/pprof (profiles, goroutine stacks, the command line) answers anyone who can reach it, without authentication; listen on 127.0.0.1", addr)
}
