package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// summary is what the report prints.
type summary struct {
	seed        uint64
	duration    time.Duration
	names       []string
	steps       []step
	windows     []*window
	violations  []violation
	injectErrs  []string
	rss         []rssSample
	ok          int
	unavailable int
	guardStarts int
}

func (s summary) write(w io.Writer) {
	fmt.Fprintf(w, "\n== redis-guardian soak: seed %d, %s, instances %v\n", s.seed, s.duration, s.names)
	fmt.Fprintf(w, "writes: %d ok, %d unavailable (no reply: restarts), guardian started %d times\n", s.ok, s.unavailable, s.guardStarts)
	fmt.Fprintf(w, "\nfaults by kind (injected, failed to inject; worst writes rejected by one fault, of them beyond its free time / budget):\n")
	type agg struct{ n, failed, worst, worstOver, extra int }
	by := map[kind]*agg{}
	for _, st := range s.steps {
		if by[st.Kind] == nil {
			by[st.Kind] = &agg{extra: budgets[st.Kind].extra}
		}
		by[st.Kind].n++
	}
	injected := map[*faultRec]bool{}
	for _, w := range s.windows {
		injected[w.rec] = true
		a := by[w.rec.step.Kind]
		a.worst, a.worstOver = max(a.worst, w.charged), max(a.worstOver, w.overBudget)
	}
	for _, ks := range kinds {
		a := by[ks.kind]
		if a == nil {
			continue
		}
		a.failed = a.n - countKind(injected, ks.kind)
		fmt.Fprintf(w, "  %-15s %4d injected %3d failed   worst %6d rejected, %4d beyond free time (budget %d)\n",
			ks.kind, a.n-a.failed, a.failed, a.worst, a.worstOver, a.extra)
	}
	s.writeRSS(w)
	if len(s.injectErrs) > 0 {
		fmt.Fprintf(w, "\ninjections that failed or did not clear cleanly (%d; not violations):\n", len(s.injectErrs))
		for _, e := range s.injectErrs {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	sort.Slice(s.violations, func(i, j int) bool { return s.violations[i].at.Before(s.violations[j].at) })
	fmt.Fprintf(w, "\nviolations: %d\n", len(s.violations))
	for _, v := range s.violations {
		fmt.Fprintf(w, "  %s  %-11s %s\n", v.at.Format("15:04:05.000"), v.inst, v.what)
	}
}

func countKind(injected map[*faultRec]bool, k kind) int {
	n := 0
	for r := range injected {
		if r.step.Kind == k {
			n++
		}
	}
	return n
}

// writeRSS prints the guardian's RSS: min, max and samples, and the maximum of
// each tenth of the run, to show growth over time.
func (s summary) writeRSS(w io.Writer) {
	if len(s.rss) == 0 {
		fmt.Fprintf(w, "\nguardian RSS: no samples\n")
		return
	}
	lo, hi := s.rss[0].kib, s.rss[0].kib
	for _, r := range s.rss {
		lo, hi = min(lo, r.kib), max(hi, r.kib)
	}
	fmt.Fprintf(w, "\nguardian RSS: min %.1f MiB, max %.1f MiB, %d samples; max per tenth of the run (MiB):", float64(lo)/1024, float64(hi)/1024, len(s.rss))
	t0, t1 := s.rss[0].at, s.rss[len(s.rss)-1].at
	span := t1.Sub(t0)/10 + 1
	tenth := make([]int64, 10)
	for _, r := range s.rss {
		i := int(r.at.Sub(t0) / span)
		tenth[i] = max(tenth[i], r.kib)
	}
	for _, v := range tenth {
		fmt.Fprintf(w, " %.1f", float64(v)/1024)
	}
	fmt.Fprintln(w)
}

// keep writes the report and a copy of the guardian's log to the out dir, for a
// look at what the guardian did around a violation.
func (k *soak) keep(s summary) error {
	if err := os.MkdirAll(k.opts.outDir, 0o755); err != nil {
		return fmt.Errorf("keep the report: %w", err)
	}
	var b strings.Builder
	s.write(&b)
	if err := os.WriteFile(filepath.Join(k.opts.outDir, "report.txt"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("keep the report: %w", err)
	}
	log, err := os.ReadFile(filepath.Join(k.g.dir, "guardian.log"))
	if err != nil {
		return fmt.Errorf("keep the guardian's log: %w", err)
	}
	return os.WriteFile(filepath.Join(k.opts.outDir, "guardian.log"), log, 0o644)
}
