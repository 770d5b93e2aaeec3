package config

import (
	"fmt"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// validator gathers every problem and warning of a pass instead of stopping at the
// first, so an operator sees the whole list at once.
type validator struct {
	problems []string
	warnings []string
	// marks cut the lists where the other pass's findings go: see merge.
	marks []place
}

// place is a place in a pass's lists: the length of each there.
type place struct{ problems, warnings int }

func (v *validator) addf(path, format string, args ...any) {
	v.problems = append(v.problems, path+": "+fmt.Sprintf(format, args...))
}

func (v *validator) warn(ws ...string) {
	v.warnings = append(v.warnings, ws...)
}

// mark notes the place the lists have reached.
func (v *validator) mark() {
	v.marks = append(v.marks, place{len(v.problems), len(v.warnings)})
}

// validate is the pass that reads nothing but the document: syntax, types, ranges
// and the rules between fields. It returns the configuration built so far even
// when there are problems, so the host pass (hostFiles) still looks at the files it
// names and every problem is reported at once.
func (r *rawConfig) validate() (*Config, *validator) {
	v := &validator{}
	c := defaults()
	v.timing(r, c)
	v.mode(r.Mode, &c.Mode)
	v.stateDir(r.StateDir, &c.StateDir)
	v.runtimeDir(r.RuntimeDir, &c.RuntimeDir)
	v.metricsListen(r.MetricsListen, &c.MetricsListen)
	v.preflight(r.Preflight, &c.Preflight)
	thr := policy.DefaultThresholds()
	v.thresholds("thresholds", r.Thresholds, &thr)
	rem := policy.DefaultRemedies()
	v.remedies("remedies", &r.Remedies, rem)
	v.ignore("ignore_findings", r.Ignore)
	c.Instances = v.instances(r.Instances, r.Ignore, thr, rem)
	return c, v
}

// merge lists a's and b's problems and warnings as one pass checking everything
// would have: the part of a up to its first mark, then b's, then a's part up to its
// next mark, then b's, and so on. The document pass and the host pass mark the same
// places of each instance (its start, and where password_file and the tls files
// are checked), so each instance's findings stay together and in their order.
func merge(a, b *validator) *validator {
	return &validator{
		problems: interleave(segments(a.problems, a.marks, func(m place) int { return m.problems }),
			segments(b.problems, b.marks, func(m place) int { return m.problems })),
		warnings: interleave(segments(a.warnings, a.marks, func(m place) int { return m.warnings }),
			segments(b.warnings, b.marks, func(m place) int { return m.warnings })),
	}
}

// segments cuts list at the marks' places (at picks the place in list).
func segments(list []string, marks []place, at func(place) int) [][]string {
	out := make([][]string, 0, len(marks)+1)
	from := 0
	for _, m := range marks {
		out = append(out, list[from:at(m)])
		from = at(m)
	}
	return append(out, list[from:])
}

func interleave(a, b [][]string) []string {
	var out []string
	for i := 0; i < max(len(a), len(b)); i++ {
		if i < len(a) {
			out = append(out, a[i]...)
		}
		if i < len(b) {
			out = append(out, b[i]...)
		}
	}
	return out
}
