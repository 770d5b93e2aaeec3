package policy

import (
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Clients of the CLIENT LIST reading, as Redis flags them.
var (
	bigMonitor     = monitor.Client{ID: 7, Addr: "10.0.0.5:51000", Cmd: "monitor", Flags: "O", Omem: 150 * mib, Age: time.Hour}
	smallMonitor   = monitor.Client{ID: 8, Addr: "10.0.0.6:51000", Cmd: "monitor", Flags: "O", Omem: 8 * mib}
	subscriber     = monitor.Client{ID: 9, Addr: "10.0.0.7:51000", Cmd: "subscribe", Flags: "P", Omem: 60 * mib}
	replicaClient  = monitor.Client{ID: 10, Addr: "10.0.0.8:6379", Cmd: "psync", Flags: "S", Omem: 90 * mib}
	noEvictMonitor = monitor.Client{ID: 11, Addr: "10.0.0.9:51000", Cmd: "monitor", Flags: "Oe", Omem: 80 * mib}
	masterLink     = monitor.Client{ID: 12, Addr: "10.0.0.1:6379", Cmd: "ping", Flags: "M", Omem: 70 * mib}
)

// clientsFill puts Redis at used of maxmemory 200 MiB (noeviction), client
// buffers holding clients of it, and the listed clients.
func clientsFill(in *Input, used, clients int64, list ...monitor.Client) {
	i := &in.Snapshot.Redis.Info
	i.MaxMemory, i.MaxMemoryPolicy, i.UsedMemory = 200*mib, "noeviction", used
	i.HasMemoryBreakdown, i.MemClientsNormal = true, clients
	i.UsedMemoryDataset, i.UsedMemoryOverhead = used-clients, clients+mib
	in.Snapshot.Redis.Clients, in.Snapshot.Redis.ClientsTime = list, in.Now
}

// oomSince makes errorstat_OOM rise by n since the previous reading.
func oomSince(in *Input, n int64) {
	prev := in.Snapshot
	prev.Time = in.Now.Add(-time.Second)
	in.Prev = &prev
	in.Snapshot.Redis.Info.ErrorstatOOM = prev.Redis.Info.ErrorstatOOM + n
}

func kill(c monitor.Client, minOmem int64, reason string) Decision {
	return Decision{Remedy: RemedyClientGuard, Action: ActClientKill, Client: c, MinOmem: minOmem, Reason: reason}
}

func TestDecideClientGuard(t *testing.T) {
	t.Parallel()
	near := func(list ...monitor.Client) func(*Input, *State) {
		return func(in *Input, _ *State) { clientsFill(in, 195*mib, 170*mib, list...) }
	}
	normalOptIn := func(in *Input) { ConfigOf[*ClientGuardConfig](in.Remedies).NormalMinOmem = 32 * mib }
	runDecideCases(t, RemedyClientGuard, []decideCase{
		{name: "healthy"},
		{name: "near maxmemory: the runaway MONITOR", setup: near(bigMonitor, smallMonitor),
			want: []Decision{kill(bigMonitor, 32*mib, IDMaxmemoryNearLimit)}},
		{name: "OOM rejections below the percent", setup: func(in *Input, st *State) {
			clientsFill(in, 150*mib, 120*mib, bigMonitor)
			oomSince(in, 40)
		}, want: []Decision{kill(bigMonitor, 32*mib, IDOOMRejections)}},
		{name: "no pressure: a big MONITOR is left alone", setup: func(in *Input, _ *State) {
			clientsFill(in, 150*mib, 120*mib, bigMonitor)
		}},
		{name: "client buffers a small share: the dataset fills memory", setup: func(in *Input, _ *State) {
			clientsFill(in, 195*mib, 40*mib, bigMonitor)
			oomSince(in, 40)
		}},
		{name: "never a replica, the master link or no-evict", setup: func(in *Input, st *State) {
			near(replicaClient, noEvictMonitor, masterLink)(in, st)
			normalOptIn(in)
		}},
		{name: "subscribers are opt-in: off by default", setup: near(subscriber)},
		{name: "subscribers opted in", setup: func(in *Input, st *State) {
			near(subscriber, bigMonitor)(in, st)
			normalOptIn(in)
		}, want: []Decision{kill(subscriber, 32*mib, IDMaxmemoryNearLimit), kill(bigMonitor, 32*mib, IDMaxmemoryNearLimit)}},
		{name: "disabled", setup: func(in *Input, st *State) {
			near(bigMonitor)(in, st)
			ConfigOf[*ClientGuardConfig](in.Remedies).Enabled = false
		}},
		{name: "monitor_min_omem 0: MONITORs off", setup: func(in *Input, st *State) {
			near(bigMonitor)(in, st)
			ConfigOf[*ClientGuardConfig](in.Remedies).MonitorMinOmem = 0
		}},
		{name: "stopping", setup: func(in *Input, st *State) {
			near(bigMonitor)(in, st)
			in.Stopping = true
		}},
		{name: "max_per_hour reached: suppressed once", setup: func(in *Input, st *State) {
			near(bigMonitor)(in, st)
			st.Shared.Actions = map[string][]time.Time{RemedyClientGuard: recentActions(30, now.Add(-time.Minute))}
		}, want: []Decision{{Remedy: RemedyClientGuard, Action: ActSuppressed, Client: bigMonitor, MinOmem: 32 * mib,
			Reason: IDMaxmemoryNearLimit, Limit: LimitMaxPerHour}}},
		{name: "the hourly cap leaves room for one of two", setup: func(in *Input, st *State) {
			second := bigMonitor
			second.ID, second.Addr = 20, "10.0.0.20:1"
			near(bigMonitor, second)(in, st)
			st.Shared.Actions = map[string][]time.Time{RemedyClientGuard: recentActions(29, now.Add(-time.Minute))}
		}, want: []Decision{kill(bigMonitor, 32*mib, IDMaxmemoryNearLimit)}},
	})
}

// A client asked to be killed is not asked again while the kept CLIENT LIST still
// names it (light ticks carry the last full reading); a failed kill is retried.
func TestClientGuardKillsOnce(t *testing.T) {
	t.Parallel()
	in := decideInput()
	clientsFill(&in, 195*mib, 170*mib, bigMonitor)
	ds, st := Decide(in, State{})
	if got := only(ds, RemedyClientGuard); len(got) != 1 {
		t.Fatalf("first tick: %+v, want one kill", got)
	}
	st = Observe(st, now, []Outcome{{Decision: ds[0], OK: true}})
	in = at(in, now.Add(time.Second))
	if ds, _ := Decide(in, st); len(only(ds, RemedyClientGuard)) != 0 {
		t.Errorf("second tick with the client still listed: %+v, want nothing", only(ds, RemedyClientGuard))
	}
	// A failed kill: retried once the backoff has passed.
	ds, st = Decide(decideInputWith(clientsFill, bigMonitor), State{})
	st = Observe(st, now, []Outcome{{Decision: only(ds, RemedyClientGuard)[0], Err: "NOPERM"}})
	in = at(decideInputWith(clientsFill, bigMonitor), now.Add(time.Minute))
	if ds, _ := Decide(in, st); len(only(ds, RemedyClientGuard)) != 1 {
		t.Errorf("after a failed kill and its backoff: %+v, want the kill again", only(ds, RemedyClientGuard))
	}
}

func decideInputWith(fill func(*Input, int64, int64, ...monitor.Client), list ...monitor.Client) Input {
	in := decideInput()
	fill(&in, 195*mib, 170*mib, list...)
	return in
}
