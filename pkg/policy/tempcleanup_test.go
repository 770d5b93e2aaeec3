package policy

import (
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

func staleTemp(name string) monitor.TempFile {
	return monitor.TempFile{Path: "/var/lib/redis/" + name, Kind: monitor.TempBgsave, Size: 40 * mib,
		ModTime: now.Add(-time.Hour), PID: 999999, PIDAlive: monitor.No}
}

func TestDecideTempCleanup(t *testing.T) {
	t.Parallel()
	// The decision carries the age it was judged with: the executor checks every
	// rule again right before the unlink, this one too.
	minAge := DefaultRemedies()[RemedyTempCleanup].(*TempCleanupConfig).MinAge
	del := func(f monitor.TempFile) Decision {
		return Decision{Remedy: RemedyTempCleanup, Action: ActDeleteTemp, Path: f.Path, Reason: IDStaleTempFiles, MinAge: minAge}
	}
	delNow := func(f monitor.TempFile) Decision {
		d := del(f)
		d.MinAge = 0 // a full disk needs every byte now
		return d
	}
	stale := staleTemp("temp-999999.rdb")
	young := stale
	young.ModTime = now.Add(-time.Minute)
	with := func(fs ...monitor.TempFile) func(in *Input, _ *State) {
		return func(in *Input, _ *State) { in.Snapshot.Host.TempFiles = fs }
	}
	then := func(a, b func(in *Input, st *State)) func(in *Input, st *State) {
		return func(in *Input, st *State) { a(in, st); b(in, st) }
	}
	runDecideCases(t, RemedyTempCleanup, []decideCase{
		{name: "stale", setup: with(stale), want: []Decision{del(stale)}},
		{name: "young", setup: with(young)},
		{name: "young on a full disk", setup: then(with(young), func(in *Input, _ *State) { in.Snapshot.Host.DataDir.Free = 0 }),
			want: []Decision{delNow(young)}},
		{name: "young when the snapshot will not fit", setup: then(with(young), func(in *Input, _ *State) { in.Snapshot.Host.DataDir.Free = uint64(mib) }),
			want: []Decision{delNow(young)}},
		{name: "young while AOF writes fail on a full AOF dir", setup: then(with(young), func(in *Input, _ *State) {
			in.Snapshot.Redis.Info.AOFLastWriteStatus = "err"
			in.Snapshot.Host.AOFDir.Free = 4096
		}), want: []Decision{delNow(young)}},
		{name: "pid alive", setup: with(func() monitor.TempFile { f := stale; f.PIDAlive = monitor.Yes; return f }())},
		{name: "pid unknown", setup: with(func() monitor.TempFile { f := stale; f.PIDAlive = monitor.Unknown; return f }())},
		{name: "child running", setup: then(with(stale), func(in *Input, _ *State) { in.Snapshot.Redis.Info.RDBBgsaveInProgress = true })},
		{name: "loading", setup: then(with(stale), func(in *Input, _ *State) { in.Snapshot.Redis.Info.Loading = true })},
		{name: "disabled", setup: then(with(stale), func(in *Input, _ *State) { ConfigOf[*TempCleanupConfig](in.Remedies).Enabled = false })},
		{name: "host unavailable", setup: then(with(stale), func(in *Input, _ *State) { in.Snapshot.Host.Available = false })},
		{name: "stopping", setup: then(with(stale), func(in *Input, _ *State) { in.Stopping = true })},
		{name: "hourly cap applies per file", setup: then(with(stale, staleTemp("temp-999998.rdb"), staleTemp("temp-999997.rdb")),
			func(in *Input, st *State) {
				ConfigOf[*TempCleanupConfig](in.Remedies).MaxPerHour = 3
				st.Shared.Actions = map[string][]time.Time{RemedyTempCleanup: {now.Add(-time.Minute)}}
			}), want: []Decision{del(stale), del(staleTemp("temp-999998.rdb"))}},
	})
}

func TestDecideTempCleanupDoesNotCountActions(t *testing.T) {
	t.Parallel()
	in := decideInput()
	in.Snapshot.Host.TempFiles = []monitor.TempFile{staleTemp("temp-999999.rdb"), staleTemp("temp-999998.rdb")}
	ds, st := Decide(in, State{})
	if len(ds) != 2 {
		t.Fatalf("got %d decisions, want 2", len(ds))
	}
	if n := len(st.Shared.Actions[RemedyTempCleanup]); n != 0 {
		t.Errorf("Decide counted %d actions; only Observe counts them", n)
	}
	outs := []Outcome{{Decision: ds[0], OK: true}, {Decision: ds[1], OK: true}}
	if n := len(Observe(st, now, outs).Shared.Actions[RemedyTempCleanup]); n != 2 {
		t.Errorf("Observe counted %d actions, want 2", n)
	}
}
