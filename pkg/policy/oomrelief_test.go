package policy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// reliefInput is a master at maxmemory 20mb under noeviction, with oom_relief on,
// that rejected 50 writes with OOM since the previous reading; it forks (save
// points), its last save copied 2 MiB, and its RSS is 1 MiB above used_memory.
func reliefInput() Input {
	in := decideInput()
	info := &in.Snapshot.Redis.Info
	info.RunID = "run1"
	info.MaxMemory, info.MaxMemoryPolicy = 20*mib, "noeviction"
	info.UsedMemory, info.UsedMemoryRSS = 20*mib, 21*mib
	info.HasMemoryBreakdown, info.UsedMemoryDataset, info.UsedMemoryOverhead = true, 19*mib, mib
	info.ErrorstatOOM = 150
	in.Snapshot.Redis.Config[SettingMaxmemory] = strconv.FormatInt(20*mib, 10)
	in.Snapshot.Redis.Config["maxmemory-policy"] = "noeviction"
	prev := in.Snapshot
	prev.Redis.Info.ErrorstatOOM = 100
	in.Prev = &prev
	in.Remedies = in.Remedies.Clone()
	ConfigOf[*OOMReliefConfig](in.Remedies).Enabled = true
	return in
}

// raisedTo holds maxmemory raised by oom_relief from 20mb to v since a minute ago.
func raisedTo(v int64) func(in *Input, st *State) {
	return func(in *Input, _ *State) {
		in.Held[SettingMaxmemory] = Held{Setting: SettingMaxmemory, Original: strconv.FormatInt(20*mib, 10), Value: strconv.FormatInt(v, 10),
			Remedy: RemedyOOMRelief, Reason: IDOOMRejections, Since: now.Add(-time.Minute)}
		in.Snapshot.Redis.Config[SettingMaxmemory] = strconv.FormatInt(v, 10)
		in.Snapshot.Redis.Info.MaxMemory = v
	}
}

// used sets used_memory (RSS 1 MiB above) and no new rejection.
func used(v int64) func(in *Input, st *State) {
	return func(in *Input, _ *State) {
		in.Snapshot.Redis.Info.UsedMemory, in.Snapshot.Redis.Info.UsedMemoryRSS = v, v+mib
		in.Snapshot.Redis.Info.UsedMemoryDataset = v - mib
		in.Prev.Redis.Info.ErrorstatOOM = in.Snapshot.Redis.Info.ErrorstatOOM
	}
}

// reliefState sets oom_relief's own state.
func reliefState(s oomReliefState) func(in *Input, st *State) {
	return func(_ *Input, st *State) {
		s.RunID = "run1"
		st.remedies = map[string]any{RemedyOOMRelief: s}
	}
}

func noFork(in *Input, _ *State) {
	in.Snapshot.Redis.Config["save"] = ""
	in.Snapshot.Redis.Config["appendonly"] = "no"
	in.Snapshot.Redis.Info.AOFEnabled = false
}

func TestDecideOOMRelief(t *testing.T) {
	t.Parallel()
	set := func(v int64, reason string) []Decision {
		return []Decision{{Remedy: RemedyOOMRelief, Action: ActSet, Setting: SettingMaxmemory, Value: strconv.FormatInt(v, 10), Reason: reason}}
	}
	undo := []Decision{{Remedy: RemedyOOMRelief, Action: ActUndo, Setting: SettingMaxmemory, Value: strconv.FormatInt(20*mib, 10), Reason: IDOOMReliefRaised}}
	edit := func(f func(in *Input)) func(in *Input, st *State) { return func(in *Input, _ *State) { f(in) } }
	policyIs := func(p string, expires int64) func(in *Input, st *State) {
		return edit(func(in *Input) {
			in.Snapshot.Redis.Config["maxmemory-policy"], in.Snapshot.Redis.Info.MaxMemoryPolicy = p, p
			in.Snapshot.Redis.Info.Expires = expires
		})
	}
	host := func(total, avail int64) func(in *Input, st *State) {
		return edit(func(in *Input) {
			in.Snapshot.Host.MemTotal, in.Snapshot.Host.MemAvailable = uint64(total), uint64(avail)
		})
	}
	growing := reliefState(oomReliefState{Samples: []memSample{{T: now.Add(-10 * time.Second), Used: 13 * mib}}})
	for _, tc := range []struct {
		name  string
		setup []func(in *Input, st *State)
		want  []Decision
		finds []idSev
	}{
		{name: "rejected under noeviction: one step of 5%", want: set(21*mib, IDOOMRejections)},
		{name: "volatile-lru with nothing volatile: raised", setup: fns(policyIs("volatile-lru", 0)), want: set(21*mib, IDOOMRejections)},
		{name: "volatile-lru with keys that expire: Redis can evict", setup: fns(policyIs("volatile-lru", 100))},
		{name: "allkeys-lru: Redis evicts", setup: fns(policyIs("allkeys-lru", 0))},
		{name: "client buffers are the cause: client_guard's job", setup: fns(edit(func(in *Input) {
			in.Snapshot.Redis.Info.MemClientsNormal = 6 * mib
		}))},
		{name: "at maxmemory, no rejection counted yet", setup: fns(used(20 * mib)), want: set(21*mib, IDMaxmemoryNearLimit)},
		{name: "growth reaches maxmemory within the horizon", setup: fns(used(18*mib), growing), want: set(21*mib, IDMaxmemoryNearLimit)},
		{name: "growth does not reach it within the horizon", setup: fns(used(14*mib), growing)},
		{name: "below, not growing", setup: fns(used(15 * mib))},
		{name: "disabled", setup: fns(edit(func(in *Input) { ConfigOf[*OOMReliefConfig](in.Remedies).Enabled = false }))},
		{name: "a replica", setup: fns(edit(func(in *Input) { in.Snapshot.Redis.Info.Role = "slave" }))},
		{name: "no maxmemory", setup: fns(edit(func(in *Input) {
			in.Snapshot.Redis.Config[SettingMaxmemory], in.Snapshot.Redis.Info.MaxMemory = "0", 0
		}))},
		{name: "stopping: nothing new", setup: fns(edit(func(in *Input) { in.Stopping = true }))},
		{name: "a step waits for a newer memory reading", setup: fns(reliefState(oomReliefState{RaisedAt: now}))},
		{name: "a newer reading: the next step", setup: fns(raisedTo(21*mib), used(21*mib), reliefState(oomReliefState{RaisedAt: now.Add(-time.Second)})),
			want: set(22*mib, IDMaxmemoryNearLimit), finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "a light read after a step: the full read's rejections are from before it", setup: fns(raisedTo(21*mib), used(20*mib+mib/2), edit(func(in *Input) {
			in.Snapshot.Redis.InfoTime, in.Snapshot.Redis.MemoryTime = now.Add(-2*time.Second), now
			in.Prev.Redis.Info.ErrorstatOOM = in.Snapshot.Redis.Info.ErrorstatOOM - 50 // the rise the full read saw
		}), reliefState(oomReliefState{RaisedAt: now.Add(-time.Second)})), finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "a light read after a step, at maxmemory again: the next step", setup: fns(raisedTo(21*mib), used(21*mib), edit(func(in *Input) {
			in.Snapshot.Redis.InfoTime, in.Snapshot.Redis.MemoryTime = now.Add(-2*time.Second), now
		}), reliefState(oomReliefState{RaisedAt: now.Add(-time.Second)})), want: set(22*mib, IDMaxmemoryNearLimit), finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "capped at max_raise", setup: fns(raisedTo(24*mib+mib/2), used(25*mib)), want: set(25*mib, IDMaxmemoryNearLimit), finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "at max_raise: no room, critical", setup: fns(raisedTo(25*mib), used(25*mib)), finds: []idSev{warn(IDOOMReliefRaised), crit(IDOOMReliefNoRoom)}},
		{name: "at max_raise, growth only predicts rejections: a warning", setup: fns(raisedTo(25*mib), used(19*mib), reliefState(oomReliefState{
			Samples: []memSample{{T: now.Add(-10 * time.Second), Used: 14 * mib}}})), finds: []idSev{warn(IDOOMReliefRaised), warn(IDOOMReliefNoRoom)}},
		{name: "host RAM: MemAvailable less 5% kept free and the 2 MiB fork reserve", setup: fns(host(40*mib, 4*mib+3*mib/4)), want: set(20*mib+3*mib/4, IDOOMRejections)},
		{name: "host RAM leaves no room with the fork reserve", setup: fns(host(40*mib, 4*mib)), finds: []idSev{crit(IDOOMReliefNoRoom)}},
		{name: "the same host, no fork: no reserve", setup: fns(host(40*mib, 4*mib), noFork), want: set(21*mib, IDOOMRejections)},
		{name: "host MemAvailable: what is free now", setup: fns(host(16*gib, 16*gib/20+2*mib+mib/2)), want: set(20*mib+mib/2, IDOOMRejections)},
		{name: "cgroup: limit less working set", setup: fns(edit(func(in *Input) {
			in.Snapshot.Host.Cgroup = monitor.CgroupReading{Known: true, Path: "/r", LimitPath: "/r", MemoryMax: uint64(gib), WorkingSet: uint64(gib - gib/20 - 2*mib - mib/2)}
		})), want: set(20*mib+mib/2, IDOOMRejections)},
		{name: "cgroup: other instances under the same limit", setup: fns(edit(func(in *Input) {
			in.Snapshot.Host.Cgroup = monitor.CgroupReading{Known: true, Path: "/r", LimitPath: "/r", MemoryMax: uint64(100 * mib), WorkingSet: uint64(30 * mib)}
			in.Snapshot.Peers = []monitor.PeerMemory{{Name: "b", MaxMemory: 76 * mib, UsedMemory: 5 * mib, CgroupLimit: "/r"},
				{Name: "c", MaxMemory: gib, UsedMemory: 5 * mib}} // c is under another limit: only the host counts it
		})), finds: []idSev{crit(IDOOMReliefNoRoom)}},
		{name: "host: the other instances' maxmemory", setup: fns(host(2*gib, gib), noFork, edit(func(in *Input) {
			// It may still take its maxmemory less its use: all but 20.5 MiB of what is free, less 5% of RAM.
			in.Snapshot.Peers = []monitor.PeerMemory{{Name: "b", MaxMemory: 100*mib + gib - 2*gib/20 - mib/2, UsedMemory: 100 * mib}}
		})), want: set(20*mib+mib/2, IDOOMRejections)},
		{name: "host: another instance without maxmemory counts what it uses (not free)", setup: fns(host(2*gib, 2*gib/20+2*mib+mib/2), edit(func(in *Input) {
			in.Snapshot.Peers = []monitor.PeerMemory{{Name: "b", UsedMemory: gib}}
		})), want: set(20*mib+mib/2, IDOOMRejections)},
		{name: "host not read: no room known", setup: fns(edit(func(in *Input) { in.Snapshot.Host = monitor.HostReading{Reason: "remote"} })), finds: []idSev{crit(IDOOMReliefNoRoom)}},
		{name: "held, under the threshold for the dwell: given back", setup: fns(raisedTo(25*mib), used(10*mib),
			reliefState(oomReliefState{BelowSince: now.Add(-10 * time.Minute)})), want: undo, finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "held, under the threshold, dwell not over", setup: fns(raisedTo(25*mib), used(10*mib),
			reliefState(oomReliefState{BelowSince: now.Add(-9 * time.Minute)})), finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "held, under the threshold but growing past it: kept", setup: fns(raisedTo(25*mib), used(15*mib),
			reliefState(oomReliefState{BelowSince: now.Add(-time.Hour), Samples: []memSample{{T: now.Add(-10 * time.Second), Used: 14 * mib}}})),
			finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "held, used_memory near the original: never given back", setup: fns(raisedTo(25*mib), used(17*mib),
			reliefState(oomReliefState{BelowSince: now.Add(-time.Hour)})), finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "held, stopping, used_memory low: given back", setup: fns(raisedTo(25*mib), used(10*mib), edit(func(in *Input) { in.Stopping = true })), want: undo},
		{name: "held, stopping, used_memory above the original: kept", setup: fns(raisedTo(25*mib), used(21*mib), edit(func(in *Input) { in.Stopping = true })),
			finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "held, stopping, still at maxmemory: neither given back nor raised", setup: fns(raisedTo(21*mib), used(21*mib), edit(func(in *Input) { in.Stopping = true })),
			finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "held, disabled by a reload, still at maxmemory: kept, not raised", setup: fns(raisedTo(21*mib), used(21*mib),
			edit(func(in *Input) { ConfigOf[*OOMReliefConfig](in.Remedies).Enabled = false })), finds: []idSev{warn(IDOOMReliefRaised)}},
		{name: "held, disabled by a reload, used_memory low: given back", setup: fns(raisedTo(25*mib), used(10*mib),
			edit(func(in *Input) { ConfigOf[*OOMReliefConfig](in.Remedies).Enabled = false })), want: undo},
		{name: "yielded to the operator: not raised again", setup: fns(edit(func(in *Input) {
			in.Yielded = []Yield{{Remedy: RemedyOOMRelief, Setting: SettingMaxmemory}}
		}))},
		{name: "another remedy's hold: not judged", setup: fns(edit(func(in *Input) {
			in.Held[SettingMaxmemory] = Held{Setting: SettingMaxmemory, Original: "1", Value: "2", Remedy: "other"}
		}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, st := reliefInput(), State{}
			for _, f := range tc.setup {
				f(&in, &st)
			}
			ds, fs, _ := decide(in, st)
			if diff := cmp.Diff(tc.want, only(ds, RemedyOOMRelief), decisionOpts...); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			var got []idSev
			for _, f := range fs {
				if strings.HasPrefix(f.ID, "oom_relief") {
					got = append(got, idSev{f.ID, f.Severity})
				}
			}
			if diff := cmp.Diff(tc.finds, got, decisionOpts...); diff != "" {
				t.Errorf("findings (-want +got):\n%s\n%+v", diff, fs)
			}
		})
	}
}

func fns(fs ...func(in *Input, st *State)) []func(in *Input, st *State) { return fs }

// TestOOMReliefEpisode runs one episode through Decide and Observe: raised in
// steps while writes are rejected (one per fresh reading), stopped at max_raise
// with the critical finding, then given back only once used_memory has stayed
// low for the dwell.
func TestOOMReliefEpisode(t *testing.T) {
	t.Parallel()
	in := reliefInput()
	st := State{}
	held := func(v string) {
		if v == "" {
			delete(in.Held, SettingMaxmemory)
			return
		}
		in.Held[SettingMaxmemory] = Held{Setting: SettingMaxmemory, Original: strconv.FormatInt(20*mib, 10), Value: v, Remedy: RemedyOOMRelief, Since: now}
	}
	var values []string
	var last []Finding
	for i := range 12 {
		t0 := now.Add(time.Duration(i) * time.Second)
		in = at(in, t0)
		prev := in.Snapshot
		in.Prev = &prev
		in.Snapshot.Redis.InfoTime = t0.Add(-time.Duration(i%2) * time.Second) // every other tick is a light one
		in.Snapshot.Redis.Info.ErrorstatOOM += 10                              // still rejecting
		in.Snapshot.Redis.Info.UsedMemory = currentMaxmemory(in)
		var ds []Decision
		ds, last, st = decide(in, st)
		ds = only(ds, RemedyOOMRelief)
		outs := make([]Outcome, 0, len(ds))
		for _, d := range ds {
			values = append(values, d.Value)
			held(d.Value)
			outs = append(outs, Outcome{Decision: d, OK: true})
		}
		st = Observe(st, t0, outs)
	}
	want := []string{"22020096", "23068672", "24117248", "25165824", "26214400"} // 21..25 MiB
	if diff := cmp.Diff(want, values); diff != "" {
		t.Fatalf("steps (-want +got):\n%s", diff)
	}
	if !hasFinding(last, IDOOMReliefNoRoom, Critical) || !hasFinding(last, IDOOMReliefRaised, Warning) {
		t.Fatalf("at max_raise: findings %+v, want %s and %s", last, IDOOMReliefNoRoom, IDOOMReliefRaised)
	}
	for _, f := range last {
		if f.ID == IDOOMReliefRaised && !strings.Contains(f.Summary, "by 5.0 MiB, from 20.0 MiB to 25.0 MiB") {
			t.Errorf("warning summary %q does not say by how much and from what", f.Summary)
		}
	}

	// The dataset shrinks: given back after the dwell (10m), not before.
	in.Snapshot.Redis.Info.UsedMemory = 5 * mib
	in.Snapshot.Redis.Info.ErrorstatOOM = prevOOM(in)
	var undone time.Duration
	for i := 0; i <= 11 && undone == 0; i++ {
		d := time.Duration(i) * time.Minute
		in = at(in, now.Add(time.Minute+d))
		in.Snapshot.Redis.InfoTime = in.Now
		var ds []Decision
		ds, _, st = decide(in, st)
		if len(only(ds, RemedyOOMRelief)) > 0 {
			undone = d
		}
	}
	if undone != 10*time.Minute {
		t.Errorf("given back %s after used_memory fell, want at the dwell, 10m", undone)
	}
}

func prevOOM(in Input) int64 { return in.Prev.Redis.Info.ErrorstatOOM }

func TestMaxmemorySetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"20971520", "20mb", true},
		{"20971520", "20MB", true},
		{"0", "0", true},
		{"20971520", "21mb", false},
	} {
		if got := SameValue(SettingMaxmemory, tc.a, tc.b); got != tc.same {
			t.Errorf("SameValue(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
	for v, ok := range map[string]bool{"0": true, "20mb": true, "1073741824": true, "-1": false, "lots": false, "": false} {
		if err := CheckHeld(RemedyOOMRelief, SettingMaxmemory, "0", v); (err == nil) != ok {
			t.Errorf("CheckHeld(maxmemory %q) = %v, want ok %v", v, err, ok)
		}
	}
}
