package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/redis-guardian/redis-guardian/internal/status"
)

// Health answers /-/healthy and /-/ready: ok, or the reason it is not.
type Health interface {
	Healthy() error
	Ready() error
}

// Handler serves /metrics, /-/healthy and /-/ready. pprof is deliberately not
// here: profiling endpoints do not belong on a port that scrapers reach.
func (m *Metrics) Handler(h Health, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(log), ErrorHandling: promhttp.ContinueOnError, Registry: m.Registry,
	}))
	mux.HandleFunc("GET /-/healthy", probe(h.Healthy))
	mux.HandleFunc("GET /-/ready", probe(h.Ready))
	if st, ok := h.(interface{ Status() status.Report }); ok {
		mux.HandleFunc("GET "+status.Path, status.Handler(st.Status))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "redis-guardian: /metrics, /-/healthy, /-/ready, /-/status\n")
	})
	return mux
}

func probe(check func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// Listen binds addr now, so a taken port fails start-up with a clear error instead
// of a log line after READY.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx is cancelled.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics server: %w", err)
		}
		return nil
	}
}
