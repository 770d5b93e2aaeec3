// Package pprofserver serves Go's runtime profiles (net/http/pprof) on an address of
// its own, so the guardian's tick can be profiled in place. It is off unless asked for,
// and never shares the metrics port: profiles expose internals and cost CPU while
// taken, which a scrape endpoint open to monitoring must not.
package pprofserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/pkg/events"
)

// Handler returns a mux with the pprof endpoints under /debug/pprof/. It is a fresh
// mux, not http.DefaultServeMux, so nothing else registered by an imported package
// is exposed with it.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve listens on addr and serves Handler until ctx is cancelled, then shuts the
// server down and returns nil. A listen failure is returned at once, so a typo in
// the address is an error at start-up rather than a silent lack of profiles.
func Serve(ctx context.Context, addr string, log *zap.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listen on %s: %w", addr, err)
	}
	return serve(ctx, ln, log)
}

func serve(ctx context.Context, ln net.Listener, log *zap.Logger) error {
	srv := &http.Server{
		Handler:           Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: /debug/pprof/profile?seconds=30 writes after 30 s.
	}
	log.Info("serving pprof", events.Field(events.PprofListening), zap.String("addr", ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("pprof server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("pprof server: %w", err)
	}
	return nil
}
