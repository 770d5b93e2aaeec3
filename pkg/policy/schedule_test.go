package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

func TestNextPoll(t *testing.T) {
	t.Parallel()
	const interval, fast = time.Second, 50 * time.Millisecond
	// A save at 12:00:00 with "save 60 1000": Redis's cron saves at the first
	// moment unixtime - lastsave > 60, so from 12:01:01.000.
	lastSave := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	due := lastSave.Add(61 * time.Second)
	snap := func(at time.Time, changes int64) monitor.Snapshot {
		return monitor.Snapshot{Time: at, Redis: monitor.RedisReading{
			Info:   monitor.Info{RDBLastSaveTime: lastSave.Unix(), RDBChangesSinceLastSave: changes, RDBLastBgsaveStatus: "ok"},
			Config: monitor.RedisConfig{"save": "3600 1 60 1000"},
		}}
	}
	tests := []struct {
		name string
		now  time.Time
		s    func(now time.Time) monitor.Snapshot
		prev func(now time.Time) *monitor.Snapshot
		want time.Duration
		// fresh: the next tick reads the host again (implied when the wait
		// ends at a window's start).
		fresh bool
	}{
		{name: "nothing due", now: lastSave.Add(10 * time.Second), s: func(n time.Time) monitor.Snapshot { return snap(n, 0) }, want: interval},
		{name: "save held while another instance holds the fork slot", now: lastSave.Add(10 * time.Second), s: func(n time.Time) monitor.Snapshot {
			s := snap(n, 0)
			s.Redis.Config = monitor.RedisConfig{"save": ""}
			s.Fork = monitor.ForkView{Known: true, Slots: 1, Others: []string{"b 1"}}
			return s
		}, want: fast},
		{name: "no save points, the fork slot free", now: lastSave.Add(10 * time.Second), s: func(n time.Time) monitor.Snapshot {
			s := snap(n, 0)
			s.Redis.Config = monitor.RedisConfig{"save": ""}
			s.Fork = monitor.ForkView{Known: true, Slots: 1}
			return s
		}, want: interval},
		{name: "a child runs", now: lastSave.Add(10 * time.Second), s: func(n time.Time) monitor.Snapshot {
			s := snap(n, 0)
			s.Redis.Info.RDBBgsaveInProgress = true
			return s
		}, want: fast},
		{name: "an AOF rewrite child runs", now: lastSave.Add(10 * time.Second), s: func(n time.Time) monitor.Snapshot {
			s := snap(n, 0)
			s.Redis.Info.AOFRewriteInProgress = true
			return s
		}, want: fast},
		{name: "a child just ended", now: lastSave.Add(10 * time.Second), s: func(n time.Time) monitor.Snapshot { return snap(n, 0) },
			prev: func(n time.Time) *monitor.Snapshot {
				p := snap(n.Add(-fast), 0)
				p.Redis.Info.RDBBgsaveInProgress = true
				return &p
			}, want: fast},
		{name: "changes reached, due in 400ms: wake just before", now: due.Add(-400 * time.Millisecond),
			s: func(n time.Time) monitor.Snapshot { return snap(n, 1500) }, want: 400*time.Millisecond - saveDueEarly},
		{name: "changes reached, due in 3s: the interval", now: due.Add(-3 * time.Second),
			s: func(n time.Time) monitor.Snapshot { return snap(n, 1500) }, want: interval},
		{name: "inside the window", now: due.Add(100 * time.Millisecond),
			s: func(n time.Time) monitor.Snapshot { return snap(n, 1500) }, want: fast, fresh: true},
		{name: "past the window", now: due.Add(time.Second),
			s: func(n time.Time) monitor.Snapshot { return snap(n, 1500) }, want: interval},
		{name: "changes not reached, no rate known", now: due.Add(100 * time.Millisecond),
			s: func(n time.Time) monitor.Snapshot { return snap(n, 900) }, want: interval},
		{name: "changes projected from the rate", now: due.Add(10 * time.Second),
			// 100 changes/s and 100 to go: due in 1 s, window from 0.75 s - saveDueEarly
			s:    func(n time.Time) monitor.Snapshot { return snap(n, 900) },
			prev: func(n time.Time) *monitor.Snapshot { p := snap(n.Add(-time.Second), 800); return &p },
			want: 750*time.Millisecond - saveDueEarly},
		{name: "no save points", now: due, s: func(n time.Time) monitor.Snapshot {
			s := snap(n, 1500)
			s.Redis.Config["save"] = ""
			return s
		}, want: interval},
		{name: "Redis unreachable", now: due, s: func(n time.Time) monitor.Snapshot {
			s := snap(n, 1500)
			s.Redis.Err = errors.New("down")
			return s
		}, want: interval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var prev *monitor.Snapshot
			if tt.prev != nil {
				prev = tt.prev(tt.now)
			}
			got := NextPoll(tt.s(tt.now), prev, tt.now, interval, fast)
			if got.Wait != tt.want {
				t.Errorf("NextPoll waits %s, want %s", got.Wait, tt.want)
			}
			// The ticks of a save window read the host again.
			if wantFresh := tt.fresh || (tt.want != interval && tt.want != fast); got.FreshHost != wantFresh {
				t.Errorf("NextPoll fresh host %v, want %v", got.FreshHost, wantFresh)
			}
		})
	}
	// Off: a zero fast poll, or one not below the interval.
	s := snap(due, 1500)
	s.Redis.Info.RDBBgsaveInProgress = true
	for _, f := range []time.Duration{0, interval} {
		if got := NextPoll(s, nil, due, interval, f); got.Wait != interval {
			t.Errorf("fast %s: NextPoll waits %s, want the interval", f, got.Wait)
		}
	}
}
