package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Shared is what several remedies need and none may own alone: the recent actions
// behind cooldowns and hourly caps, the backoff after a failed action, and the
// settings the guardian yielded to an operator. Its queries (Limit, Allowed,
// Budget, IsYielded) only read, so what one remedy is told never depends on which
// remedy asked before it (Registry's order). It changes only in steps that say so:
// Decide records the tick's yields and forgets actions older than an hour before
// any remedy runs, Observe records outcomes, and a remedy writes its own entries
// with Gate, EndSuppression and EndEpisode.
type Shared struct {
	// Actions holds recent action times per remedy, for cooldowns and hourly caps.
	Actions map[string][]time.Time
	// FailedUntil backs a remedy off after a failure; FailCount grows the backoff.
	FailedUntil map[string]time.Time
	FailCount   map[string]int
	// Yielded holds, by remedy and setting (Yield.key), the holds an operator
	// changed while the guardian held them. The
	// guardian does not take such a setting again until its reason has cleared: the
	// operator's choice wins for the whole episode.
	Yielded map[string]time.Time
	// Suppressed holds, per remedy, the limit that stopped it in the current
	// episode, so the suppression is reported once, not at every tick.
	Suppressed map[string]string
}

// Limit names: why a remedy that wanted to act did not (the reason label of
// redis_guardian_remedies_suppressed_total).
const (
	LimitMaxPerHour = "max_per_hour"
	LimitBackoff    = "backoff"
	LimitCooldown   = "cooldown"
	LimitDisabled   = "disabled"
)

// SuppressionReasons are the limits whose suppressions are reported and counted.
// A cooldown only paces a remedy and a disabled one is the operator's choice:
// neither is reported.
var SuppressionReasons = []string{LimitMaxPerHour, LimitBackoff}

func (s Shared) clone() Shared {
	c := Shared{
		Actions:     make(map[string][]time.Time, len(s.Actions)),
		FailedUntil: maps.Clone(s.FailedUntil),
		FailCount:   maps.Clone(s.FailCount),
		Yielded:     maps.Clone(s.Yielded),
		Suppressed:  maps.Clone(s.Suppressed),
	}
	for k, v := range s.Actions {
		c.Actions[k] = slices.Clone(v)
	}
	if c.FailedUntil == nil {
		c.FailedUntil = map[string]time.Time{}
	}
	if c.FailCount == nil {
		c.FailCount = map[string]int{}
	}
	if c.Yielded == nil {
		c.Yielded = map[string]time.Time{}
	}
	if c.Suppressed == nil {
		c.Suppressed = map[string]string{}
	}
	return c
}

// Allowed applies a remedy's enabled flag, failure backoff, cooldown and hourly cap.
func (s *Shared) Allowed(remedy string, l Limits, now time.Time) bool {
	return s.Limit(remedy, l, now) == ""
}

// Limit says which limit stops a remedy now ("" when none does).
func (s *Shared) Limit(remedy string, l Limits, now time.Time) string {
	if !l.Enabled {
		return LimitDisabled
	}
	if until, ok := s.FailedUntil[remedy]; ok && now.Before(until) {
		return LimitBackoff
	}
	n, last := s.recent(remedy, now)
	if n >= l.MaxPerHour {
		return LimitMaxPerHour
	}
	if n > 0 && now.Sub(last) < l.Cooldown {
		return LimitCooldown
	}
	return ""
}

// Gate applies a remedy's limits to a decision it wants to make: it returns the
// decision when allowed. When a limit stops it, it returns, once per episode, an
// ActSuppressed decision that says which limit and what was not done, so a held-back
// remedy is never silent; nil after that. The episode ends when the remedy is
// allowed again or calls EndSuppression.
func (s *Shared) Gate(l Limits, now time.Time, d Decision) []Decision {
	why := s.Limit(d.Remedy, l, now)
	if why == "" {
		delete(s.Suppressed, d.Remedy)
		return []Decision{d}
	}
	if !slices.Contains(SuppressionReasons, why) || s.Suppressed[d.Remedy] == why {
		return nil
	}
	s.Suppressed[d.Remedy] = why
	sup := d
	sup.Action, sup.Limit = ActSuppressed, why
	sup.Detail = fmt.Sprintf("not done (%s limit): %s %s", why, d.Action, d.Detail)
	return []Decision{sup}
}

// EndSuppression ends a remedy's suppression episode: the reason it wanted to act
// has gone, so a later suppression is reported again.
func (s *Shared) EndSuppression(remedy string) { delete(s.Suppressed, remedy) }

// Budget is how many more actions the hourly cap allows a remedy now.
func (s *Shared) Budget(remedy string, l Limits, now time.Time) int {
	n, _ := s.recent(remedy, now)
	return l.MaxPerHour - n
}

// recent counts a remedy's actions of the last hour and returns the latest of
// them. It only reads: prune is what forgets the older ones.
func (s *Shared) recent(remedy string, now time.Time) (n int, last time.Time) {
	for _, t := range s.Actions[remedy] {
		if now.Sub(t) < time.Hour {
			n, last = n+1, t
		}
	}
	return n, last
}

// prune forgets the actions older than an hour, which no limit counts any more,
// so the state does not grow. Decide runs it once per tick, before any remedy
// asks; the answers of the queries are the same with or without it.
func (s *Shared) prune(now time.Time) {
	for remedy, ts := range s.Actions {
		var kept []time.Time
		for _, t := range ts {
			if now.Sub(t) < time.Hour {
				kept = append(kept, t)
			}
		}
		if kept == nil {
			delete(s.Actions, remedy)
		} else {
			s.Actions[remedy] = kept
		}
	}
}

// Yield is a held change an operator took over: the remedy that held it, and the
// setting.
type Yield struct {
	Remedy  string
	Setting string
	// At is when the guardian yielded; zero means the tick's time. A yield a
	// restarted guardian reads back from its state dir keeps its own.
	At time.Time
}

func (y Yield) key() string { return y.Remedy + " " + y.Setting }

// Yields lists the yields of the current episodes, sorted: what a guardian
// keeps in its state dir, so its restart does not take back from an operator
// what it gave them.
func (s State) Yields() []Yield {
	out := make([]Yield, 0, len(s.Shared.Yielded))
	for k, at := range s.Shared.Yielded {
		remedy, setting, _ := strings.Cut(k, " ")
		out = append(out, Yield{Remedy: remedy, Setting: setting, At: at})
	}
	slices.SortFunc(out, func(a, b Yield) int { return strings.Compare(a.key(), b.key()) })
	return out
}

// IsYielded reports whether the guardian yielded remedy's hold of setting to an
// operator in the current episode of that remedy.
func (s *Shared) IsYielded(remedy, setting string) bool {
	_, ok := s.Yielded[Yield{Remedy: remedy, Setting: setting}.key()]
	return ok
}

// YieldedAt is when the guardian yielded remedy's hold of setting (zero when
// it did not).
func (s *Shared) YieldedAt(remedy, setting string) time.Time {
	return s.Yielded[Yield{Remedy: remedy, Setting: setting}.key()]
}

// EndEpisode forgets a remedy's yield of setting: the reason the remedy would take
// the setting for has cleared, so its next episode may take it again. Each remedy
// ends only its own: two remedies may hold one setting for different reasons.
func (s *Shared) EndEpisode(remedy, setting string) {
	delete(s.Yielded, Yield{Remedy: remedy, Setting: setting}.key())
}

// observe records one outcome: successes count against the rate limits, failures
// back the remedy off so a denied command is not retried in a tight loop.
func (s *Shared) observe(now time.Time, o Outcome) {
	r := o.Decision.Remedy
	if o.Decision.Action == ActSuppressed {
		return
	}
	if o.OK {
		// Undos do not count against the limits: giving a setting back is never
		// what a rate limit protects Redis from.
		if o.Decision.Action != ActUndo {
			s.Actions[r] = append(s.Actions[r], now)
		}
		delete(s.FailCount, r)
		delete(s.FailedUntil, r)
		return
	}
	s.FailCount[r]++
	back := time.Duration(1<<min(s.FailCount[r]-1, 6)) * 10 * time.Second // 10 s .. ~10 min
	s.FailedUntil[r] = now.Add(back)
}
