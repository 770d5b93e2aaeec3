package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/config"
	"github.com/redis-guardian/redis-guardian/internal/status"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// statusTimeout bounds the question to the running guardian.
const statusTimeout = 3 * time.Second

// runStatus shows what the running guardian holds and sees, from its /-/status
// endpoint on metrics_listen; without one, what the ledgers hold. Exit 0 when
// nothing is held and nothing is critical, 1 otherwise, 2 on bad usage.
func runStatus(ctx context.Context, args []string, env Env) int {
	var c commonFlags
	fs := newFlagSet("status", env.Stderr, &c, false)
	format := fs.String("format", "text", "output format: text or json")
	fs.StringVar(&c.stateDir, "state-dir", "", "where the ledger of held changes is kept (default /var/lib/redis-guardian)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err, 2)
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(env.Stderr, "redis-guardian status: --format %q: want text or json\n", *format)
		return 2
	}
	cfg, err := loadConfig(c, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%v\n", err)
		return 2
	}
	r, err := fetchOrLedgers(ctx, cfg, env.Now())
	if err != nil {
		fmt.Fprintf(env.Stderr, "redis-guardian status: %v\n", err)
		return 2
	}
	if *format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		status.WriteText(env.Stdout, r)
	}
	if r.OK() {
		return 0
	}
	return 1
}

// fetchOrLedgers asks the running guardian; when none answers, it reads the
// ledgers of the configured instances without taking their locks.
func fetchOrLedgers(ctx context.Context, cfg *config.Config, now time.Time) (status.Report, error) {
	why := "metrics_listen is off, so a running guardian cannot be asked"
	if cfg.MetricsListen != "" {
		fctx, cancel := context.WithTimeout(ctx, statusTimeout)
		r, err := status.Fetch(fctx, cfg.MetricsListen)
		cancel()
		if err == nil {
			return r, nil
		}
		why = err.Error()
	}
	r := status.Report{Source: "ledger", Time: now, Note: why}
	for _, in := range cfg.Instances {
		si := status.Instance{Name: in.Name, Addr: monitor.RedactAddr(in.Addr), Findings: []status.Finding{}, Held: []status.Held{}}
		cs, err := remediate.ReadLedger(remediate.LedgerPath(cfg.StateDir, in.Name))
		if err != nil {
			si.Error = err.Error()
		}
		si.Held = status.FromChanges(cs, now)
		if ys, err := remediate.ReadYields(cfg.StateDir, in.Name); err == nil {
			si.Yielded = status.FromYields(ys)
		}
		r.Instances = append(r.Instances, si)
	}
	r.Sort()
	if n := cfg.ForkSlots(); n > 0 {
		r.Fork = status.ReadForkSlots(cfg.RuntimeDir, n)
	}
	return r, nil
}
