// Package status is what `redis-guardian status` shows: what a running guardian
// holds and sees, served by the daemon on its local HTTP endpoint (/-/status) and
// read back by the command; without a daemon, the ledgers alone.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/forkslot"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// Path is where the daemon serves its status.
const Path = "/-/status"

// Report is the guardian's state, one entry per instance.
type Report struct {
	// Source says where it came from: "daemon" (the running guardian) or
	// "ledger" (no guardian answered: only what the ledgers hold).
	Source    string     `json:"source"`
	Version   string     `json:"version,omitempty"`
	Time      time.Time  `json:"time"`
	Note      string     `json:"note,omitempty"`
	Instances []Instance `json:"instances"`
	// Fork is who holds the host's fork slots (fork_budget), read from the
	// slot files when the report was made; nil when no instance uses them.
	Fork *ForkSlots `json:"fork_slots,omitempty"`
}

// ForkSlots is the host's fork slots: every guardian of the host shares them.
type ForkSlots struct {
	Dir string `json:"dir"`
	// Holders has one entry per slot: "instance pid" of its holder, "" when free.
	Holders []string `json:"holders"`
	// Waiters are the instances whose due save waits for a slot, oldest first:
	// the first takes the next slot that frees.
	Waiters []Waiter `json:"waiters,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Waiter is an instance whose due save waits for a fork slot.
type Waiter struct {
	Holder string    `json:"holder"`
	Since  time.Time `json:"since"`
}

// ReadForkSlots reads who holds the n fork slots of dir, taking none.
func ReadForkSlots(dir string, n int) *ForkSlots {
	hs, err := forkslot.Holders(dir, n)
	if err != nil {
		return &ForkSlots{Dir: dir, Holders: []string{}, Error: err.Error()}
	}
	f := &ForkSlots{Dir: dir, Holders: hs}
	for _, w := range forkslot.Waiters(dir) {
		f.Waiters = append(f.Waiters, Waiter{Holder: w.Holder, Since: w.Since})
	}
	return f
}

// Instance is one watched Redis.
type Instance struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	// Up and LastTick are known only from a running guardian.
	Up       *bool      `json:"up,omitempty"`
	LastTick *time.Time `json:"last_tick,omitempty"`
	Findings []Finding  `json:"findings"`
	Held     []Held     `json:"held"`
	// ForkSlot says the instance held a host fork slot at its last tick.
	ForkSlot bool `json:"holds_fork_slot,omitempty"`
	// Yielded are the settings the guardian gave over to an operator for the
	// rest of their remedy's episode: it does not take them again until then.
	Yielded []Yielded `json:"yielded,omitempty"`
	// Error says why the instance's ledger could not be read.
	Error string `json:"error,omitempty"`
}

// Finding is an active finding.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
}

// Yielded is a setting an operator took over from a remedy's hold.
type Yielded struct {
	Setting string    `json:"setting"`
	Remedy  string    `json:"remedy"`
	Since   time.Time `json:"since"`
}

// FromYields turns the policy's yields into Yielded.
func FromYields(ys []policy.Yield) []Yielded {
	var out []Yielded
	for _, y := range ys {
		out = append(out, Yielded{Setting: y.Setting, Remedy: y.Remedy, Since: y.At})
	}
	return out
}

// Held is one ledger entry: a setting the guardian holds changed.
type Held struct {
	Setting    string    `json:"setting"`
	Value      string    `json:"value"`
	Original   string    `json:"original"`
	Remedy     string    `json:"remedy"`
	Reason     string    `json:"reason"`
	Redis      string    `json:"redis"`
	RunID      string    `json:"run_id,omitempty"`
	Since      time.Time `json:"since"`
	AgeSeconds float64   `json:"age_seconds"`
}

// FromChanges turns ledger entries into Held, aged at now.
func FromChanges(cs []remediate.Change, now time.Time) []Held {
	out := make([]Held, 0, len(cs))
	for _, c := range cs {
		out = append(out, Held{Setting: c.Setting, Value: c.Value, Original: c.Original, Remedy: c.Remedy, Reason: c.Reason,
			Redis: c.Addr, RunID: c.RunID, Since: c.Time, AgeSeconds: now.Sub(c.Time).Seconds()})
	}
	return out
}

// FromFindings keeps what the status shows of findings.
func FromFindings(fs []policy.Finding) []Finding {
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, Finding{ID: f.ID, Severity: string(f.Severity), Summary: f.Summary})
	}
	return out
}

// Sort orders instances by name.
func (r *Report) Sort() {
	sort.Slice(r.Instances, func(i, j int) bool { return r.Instances[i].Name < r.Instances[j].Name })
}

// OK reports whether nothing is held (a standing hold, oom_shield's, aside),
// nothing critical is active and every ledger could be read: the status
// command's exit code 0.
func (r Report) OK() bool {
	for _, in := range r.Instances {
		if in.Error != "" || (in.Up != nil && !*in.Up) {
			return false
		}
		for _, h := range in.Held {
			if !policy.StandingHold(h.Remedy) {
				return false
			}
		}
		for _, f := range in.Findings {
			if f.Severity == string(policy.Critical) {
				return false
			}
		}
	}
	return true
}

// Handler serves the report that get builds, as JSON.
func Handler(get func() Report) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(get())
	}
}

// Fetch asks the guardian listening on addr (its metrics_listen) for its report.
// A wildcard host (0.0.0.0, ::) is asked on loopback.
func Fetch(ctx context.Context, addr string) (Report, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Report{}, fmt.Errorf("metrics_listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Report{}, fmt.Errorf("ask %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Report{}, fmt.Errorf("ask %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Report{}, fmt.Errorf("ask %s: %s", url, resp.Status)
	}
	var r Report
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&r); err != nil {
		return Report{}, fmt.Errorf("read %s: %w", url, err)
	}
	return r, nil
}

// WriteText renders the report for a person.
func WriteText(w io.Writer, r Report) {
	switch r.Source {
	case "daemon":
		fmt.Fprintf(w, "redis-guardian %s is running: %d instance(s)\n", r.Version, len(r.Instances))
	default:
		fmt.Fprintf(w, "no running redis-guardian answered (%s); the ledgers say:\n", r.Note)
	}
	for _, in := range r.Instances {
		state := ""
		switch {
		case in.Up == nil:
		case *in.Up:
			state = " up"
		default:
			state = " UNREACHABLE"
		}
		tick := ""
		if in.LastTick != nil {
			tick = fmt.Sprintf(", last tick %s ago", r.Time.Sub(*in.LastTick).Round(time.Millisecond))
		}
		fmt.Fprintf(w, "\n%s (%s)%s%s\n", in.Name, in.Addr, state, tick)
		if in.Error != "" {
			fmt.Fprintf(w, "  ledger: %s\n", in.Error)
		}
		if len(in.Held) == 0 && in.Error == "" {
			fmt.Fprintln(w, "  holds nothing")
		}
		for _, h := range in.Held {
			fmt.Fprintf(w, "  holds %s %s (original %s) on %s for %s: %s, %s\n", h.Setting, h.Value, h.Original, h.Redis,
				time.Duration(h.AgeSeconds*float64(time.Second)).Round(time.Second), h.Remedy, h.Reason)
		}
		if in.ForkSlot {
			fmt.Fprintln(w, "  holds a fork slot")
		}
		for _, y := range in.Yielded {
			fmt.Fprintf(w, "  yielded %s to an operator %s ago (%s): not taken again until that episode ends\n", y.Setting,
				r.Time.Sub(y.Since).Round(time.Second), y.Remedy)
		}
		for _, f := range in.Findings {
			fmt.Fprintf(w, "  %s %s: %s\n", strings.ToUpper(f.Severity), f.ID, f.Summary)
		}
	}
	writeForkSlots(w, r.Fork)
}

// writeForkSlots renders who holds the host's fork slots.
func writeForkSlots(w io.Writer, f *ForkSlots) {
	if f == nil {
		return
	}
	if f.Error != "" {
		fmt.Fprintf(w, "\nfork slots (%s): unreadable: %s\n", f.Dir, f.Error)
		return
	}
	fmt.Fprintf(w, "\nfork slots (%s):\n", f.Dir)
	for i, h := range f.Holders {
		if h == "" {
			h = "free"
		} else {
			h = "held by " + h
		}
		fmt.Fprintf(w, "  slot %d: %s\n", i, h)
	}
	for i, wt := range f.Waiters {
		fmt.Fprintf(w, "  waiting %d: %s, since %s\n", i+1, wt.Holder, wt.Since.UTC().Format(time.RFC3339))
	}
}
