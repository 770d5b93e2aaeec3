package policy

import (
	"maps"
	"slices"
	"time"
)

// Shared is what several remedies need and none may own alone: the recent actions
// behind cooldowns and hourly caps, the backoff after a failed action, and the
// settings the guardian yielded to an operator. Decide and Observe are its only
// writers; a remedy asks it through Allowed and Yielded, and ends a yield with
// EndEpisode when the reason of the episode has cleared.
type Shared struct {
	// Actions holds recent action times per remedy, for cooldowns and hourly caps.
	Actions map[string][]time.Time
	// FailedUntil backs a remedy off after a failure; FailCount grows the backoff.
	FailedUntil map[string]time.Time
	FailCount   map[string]int
	// Yielded holds settings an operator changed while the guardian held them. The
	// guardian does not take such a setting again until its reason has cleared: the
	// operator's choice wins for the whole episode.
	Yielded map[string]time.Time
}

func (s Shared) clone() Shared {
	c := Shared{
		Actions:     make(map[string][]time.Time, len(s.Actions)),
		FailedUntil: maps.Clone(s.FailedUntil),
		FailCount:   maps.Clone(s.FailCount),
		Yielded:     maps.Clone(s.Yielded),
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
	return c
}

// Allowed applies a remedy's enabled flag, failure backoff, cooldown and hourly cap.
func (s *Shared) Allowed(remedy string, l Limits, now time.Time) bool {
	if !l.Enabled {
		return false
	}
	if until, ok := s.FailedUntil[remedy]; ok && now.Before(until) {
		return false
	}
	recent := s.recent(remedy, now)
	if len(recent) >= l.MaxPerHour {
		return false
	}
	if n := len(recent); n > 0 && now.Sub(recent[n-1]) < l.Cooldown {
		return false
	}
	return true
}

// Budget is how many more actions the hourly cap allows a remedy now.
func (s *Shared) Budget(remedy string, l Limits, now time.Time) int {
	return l.MaxPerHour - len(s.recent(remedy, now))
}

// recent drops actions older than an hour and returns the rest.
func (s *Shared) recent(remedy string, now time.Time) []time.Time {
	var recent []time.Time
	for _, t := range s.Actions[remedy] {
		if now.Sub(t) < time.Hour {
			recent = append(recent, t)
		}
	}
	if recent == nil {
		delete(s.Actions, remedy)
	} else {
		s.Actions[remedy] = recent
	}
	return recent
}

// IsYielded reports whether the guardian yielded setting to an operator in the
// current episode.
func (s *Shared) IsYielded(setting string) bool {
	_, ok := s.Yielded[setting]
	return ok
}

// EndEpisode forgets a yield: the reason the guardian would take the setting for
// has cleared, so the next episode may take it again.
func (s *Shared) EndEpisode(setting string) { delete(s.Yielded, setting) }

// observe records one outcome: successes count against the rate limits, failures
// back the remedy off so a denied command is not retried in a tight loop.
func (s *Shared) observe(now time.Time, o Outcome) {
	r := o.Decision.Remedy
	if o.OK {
		s.Actions[r] = append(s.Actions[r], now)
		delete(s.FailCount, r)
		delete(s.FailedUntil, r)
		return
	}
	s.FailCount[r]++
	back := time.Duration(1<<min(s.FailCount[r]-1, 6)) * 10 * time.Second // 10 s .. ~10 min
	s.FailedUntil[r] = now.Add(back)
}
