package policy

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

func TestDecideOOMShield(t *testing.T) {
	t.Parallel()
	set := []Decision{{Remedy: RemedyOOMShield, Action: ActSet, Setting: SettingOOMScoreAdj, Value: "relative", Reason: ReasonChildFirst}}
	undo := []Decision{{Remedy: RemedyOOMShield, Action: ActUndo, Setting: SettingOOMScoreAdj, Value: "no", Reason: ReasonChildFirst}}
	live := func(v string) func(in *Input) {
		return func(in *Input) { in.Snapshot.Redis.Config[SettingOOMScoreAdj] = v }
	}
	noFork := func(in *Input) {
		in.Snapshot.Redis.Config["save"] = ""
		in.Snapshot.Redis.Config["appendonly"] = "no"
		in.Snapshot.Redis.Info.AOFEnabled = false
	}
	hold := func(in *Input) {
		in.Held[SettingOOMScoreAdj] = Held{Setting: SettingOOMScoreAdj, Original: "no", Value: "relative", Remedy: RemedyOOMShield, Reason: ReasonChildFirst}
		in.Snapshot.Redis.Config[SettingOOMScoreAdj] = "yes" // Redis stores relative as yes
	}
	with := func(fs ...func(in *Input)) func(in *Input, _ *State) {
		return func(in *Input, _ *State) {
			for _, f := range fs {
				f(in)
			}
		}
	}
	runDecideCases(t, RemedyOOMShield, []decideCase{
		{name: "save points, live no: hold relative", setup: with(live("no")), want: set},
		{name: "AOF only", setup: with(live("no"), noFork, func(in *Input) { in.Snapshot.Redis.Config["appendonly"] = "yes" }), want: set},
		{name: "a master with replicas, no persistence", setup: with(live("no"), noFork, func(in *Input) { in.Snapshot.Redis.Info.ConnectedReplicas = 1 }), want: set},
		{name: "never forks", setup: with(live("no"), noFork)},
		{name: "the operator's yes", setup: with(live("yes"))},
		{name: "the operator's relative", setup: with(live("relative"))},
		{name: "the operator's absolute", setup: with(live("absolute"))},
		{name: "unknown setting (before 6.2, or not in the reply)", setup: with()},
		{name: "disabled", setup: with(live("no"), func(in *Input) { ConfigOf[*OOMShieldConfig](in.Remedies).Enabled = false })},
		{name: "stopping, not held: nothing new", setup: with(live("no"), func(in *Input) { in.Stopping = true })},
		{name: "held while it forks", setup: with(hold)},
		{name: "held, stopping: given back", setup: with(hold, func(in *Input) { in.Stopping = true }), want: undo},
		{name: "held, no longer forks: given back", setup: with(hold, noFork), want: undo},
		{name: "held while another remedy holds save \"\" for a while: kept", setup: with(hold, noFork, func(in *Input) {
			in.Held["save"] = Held{Setting: "save", Original: "900 1", Value: "", Remedy: "fork_budget"}
		})},
		{name: "yielded to the operator: not taken again", setup: func(in *Input, st *State) {
			live("no")(in)
			in.Yielded = []Yield{{Remedy: RemedyOOMShield, Setting: SettingOOMScoreAdj}}
		}},
		{name: "held by the old guardian run but disabled now: still given back on stop", setup: with(hold,
			func(in *Input) { ConfigOf[*OOMShieldConfig](in.Remedies).Enabled = false; in.Stopping = true }), want: undo},
	})
}

// TestOOMShieldYieldEndsWhenForksStop: the operator's value wins for the episode
// (the instance forking); once it no longer forks, a later episode may hold again.
func TestOOMShieldYieldEpisode(t *testing.T) {
	t.Parallel()
	in := decideInput()
	in.Snapshot.Redis.Config[SettingOOMScoreAdj] = "no"
	in.Yielded = []Yield{{Remedy: RemedyOOMShield, Setting: SettingOOMScoreAdj}}
	ds, st := Decide(in, State{})
	if got := only(ds, RemedyOOMShield); len(got) != 0 {
		t.Fatalf("yielded tick decided %+v", got)
	}
	in.Yielded = nil
	in = at(in, now.Add(time.Minute))
	if ds, _ := Decide(in, st); len(only(ds, RemedyOOMShield)) != 0 {
		t.Fatalf("took the operator's setting again in the same episode: %+v", only(ds, RemedyOOMShield))
	}
	quiet := in
	quiet.Snapshot.Redis.Config = maps.Clone(in.Snapshot.Redis.Config)
	quiet.Snapshot.Redis.Config["save"], quiet.Snapshot.Redis.Config["appendonly"] = "", "no"
	_, st = Decide(quiet, st)
	if ds, _ := Decide(at(in, now.Add(2*time.Minute)), st); len(only(ds, RemedyOOMShield)) != 1 {
		t.Fatalf("a new episode (it forks again) did not hold: %+v", only(ds, RemedyOOMShield))
	}
}

// TestOOMShieldRefused: a CONFIG SET Redis refuses is a finding naming the
// reason, and is retried only after the shared backoff, never at every tick.
func TestOOMShieldRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ answer, fix string }{
		{"NOPERM User guardian has no permissions to run the 'config|set' command", "+config|set"},
		{"ERR unknown command 'CONFIG', with args beginning with: 'SET' 'oom-score-adj' 'relative' ", "config_command"},
		{"ERR CONFIG SET failed (possibly related to argument 'oom-score-adj') - Failed to set current oom_score_adj. Check server logs.", "/proc/self/oom_score_adj"},
		{"ERR Unknown option or number of arguments for CONFIG SET - 'oom-score-adj'", "upgrade"},
	} {
		t.Run(tc.fix, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			in.Snapshot.Redis.Config[SettingOOMScoreAdj] = "no"
			res, st := Evaluate(in, State{})
			ds := only(res.Decisions, RemedyOOMShield)
			if len(ds) != 1 || ds[0].Action != ActSet {
				t.Fatalf("first tick: %+v", ds)
			}
			st = Observe(st, now, []Outcome{{Decision: ds[0], Err: tc.answer}})
			var sets, suppressed int
			for i := range 30 { // 30 ticks in 9 s: inside the first backoff (10 s)
				res, st = Evaluate(at(in, now.Add(time.Duration(i+1)*300*time.Millisecond)), st)
				for _, d := range only(res.Decisions, RemedyOOMShield) {
					switch d.Action {
					case ActSet:
						sets++
					case ActSuppressed:
						suppressed++
					}
				}
				f := findingOf(res.Findings, IDOOMShieldUnavailable)
				if f == nil {
					t.Fatalf("tick %d: no %s finding: %+v", i, IDOOMShieldUnavailable, res.Findings)
				}
				if !strings.Contains(f.Cause, tc.answer) || !strings.Contains(f.Fix, tc.fix) {
					t.Fatalf("finding does not name the reason: %+v", f)
				}
			}
			if sets != 0 || suppressed != 1 {
				t.Errorf("during the backoff: %d sets, %d suppressions; want 0 and 1", sets, suppressed)
			}
			res, st = Evaluate(at(in, now.Add(time.Minute)), st)
			ds = only(res.Decisions, RemedyOOMShield)
			if len(ds) != 1 || ds[0].Action != ActSet {
				t.Fatalf("after the backoff: %+v", ds)
			}
			st = Observe(st, now.Add(time.Minute), []Outcome{{Decision: ds[0], OK: true}})
			in.Held = map[string]Held{SettingOOMScoreAdj: {Setting: SettingOOMScoreAdj, Original: "no", Value: "relative", Remedy: RemedyOOMShield}}
			in.Snapshot.Redis.Config[SettingOOMScoreAdj] = "relative"
			if res, _ = Evaluate(at(in, now.Add(61*time.Second)), st); findingOf(res.Findings, IDOOMShieldUnavailable) != nil {
				t.Errorf("finding stays after the set succeeded")
			}
		})
	}
}

func TestOOMShieldOldServer(t *testing.T) {
	t.Parallel()
	in := decideInput()
	in.Snapshot.Redis.Info.Version = "6.0.16"
	res, _ := Evaluate(in, State{})
	if len(only(res.Decisions, RemedyOOMShield)) != 0 {
		t.Errorf("decided on a server without the setting: %+v", res.Decisions)
	}
	if f := findingOf(res.Findings, IDOOMShieldUnavailable); f == nil || !strings.Contains(f.Cause, "6.0.16") {
		t.Errorf("want %s naming the version, got %+v", IDOOMShieldUnavailable, res.Findings)
	}
	in.Snapshot.Redis.Config["save"], in.Snapshot.Redis.Config["appendonly"] = "", "no"
	if res, _ := Evaluate(in, State{}); findingOf(res.Findings, IDOOMShieldUnavailable) != nil {
		t.Errorf("an instance that never forks needs no shield: %+v", res.Findings)
	}
}

func TestOOMShieldValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, live, values, role string
		want                     bool
	}{
		{"default values", "relative", "0 200 800", "master", false},
		{"child no higher than the master", "relative", "0 200 0", "master", true},
		{"child below the replica", "yes", "0 900 800", "slave", true},
		{"child above the replica", "yes", "0 200 800", "slave", false},
		{"off: the shield's hold will say nothing yet", "no", "0 0 0", "master", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			in.Snapshot.Redis.Config[SettingOOMScoreAdj] = tc.live
			in.Snapshot.Redis.Config[SettingOOMScoreAdjValues] = tc.values
			in.Snapshot.Redis.Info.Role = tc.role
			res, _ := Evaluate(in, State{})
			if got := findingOf(res.Findings, IDOOMScoreAdjIneffective) != nil; got != tc.want {
				t.Errorf("%s: got %v, want %v (%+v)", IDOOMScoreAdjIneffective, got, tc.want, res.Findings)
			}
		})
	}
}

func TestValidOOMScoreAdj(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"no", "yes", "relative", "absolute", " Relative "} {
		if err := CheckHeld(RemedyOOMShield, SettingOOMScoreAdj, "no", v); err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
	}
	for _, v := range []string{"", "-1000", "on", "relative; rm"} {
		if err := CheckHeld(RemedyOOMShield, SettingOOMScoreAdj, "no", v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
	// Redis stores relative as yes: CONFIG GET's yes after a set of relative is
	// the guardian's own value, not an operator's change.
	if !SameValue(SettingOOMScoreAdj, "relative", "yes") || SameValue(SettingOOMScoreAdj, "relative", "absolute") || SameValue(SettingOOMScoreAdj, "no", "yes") {
		t.Errorf("oom-score-adj values compare wrongly")
	}
	if !slices.Contains(ConfigParams(), SettingOOMScoreAdj) || !slices.Contains(ConfigParams(), SettingOOMScoreAdjValues) {
		t.Errorf("CONFIG GET does not read the shield's settings: %v", ConfigParams())
	}
	if diff := cmp.Diff(true, DefaultRemedies()[RemedyOOMShield].RateLimits().Enabled); diff != "" {
		t.Errorf("oom_shield must be on by default")
	}
}

func findingOf(fs []Finding, id string) *Finding {
	for i := range fs {
		if fs[i].ID == id {
			return &fs[i]
		}
	}
	return nil
}

// TestOOMShieldValueInConfigFile: a CONFIG REWRITE (Sentinel's, at every failover)
// during the hold writes oom-score-adj yes into the file. That is harmless (a
// restart runs shielded, and the guardian leaves that value alone), so it is not
// the critical held_value_in_config_file a held stop-writes no is.
func TestOOMShieldValueInConfigFile(t *testing.T) {
	t.Parallel()
	in := decideInput()
	in.Held[SettingOOMScoreAdj] = Held{Setting: SettingOOMScoreAdj, Original: "no", Value: "relative", Remedy: RemedyOOMShield}
	in.Snapshot.Redis.Config[SettingOOMScoreAdj] = "yes"
	in.Snapshot.Redis.File = monitor.ConfigFileReading{Path: "/etc/redis/redis.conf", Known: true, Lines: map[string]monitor.ConfigFileLine{
		SettingOOMScoreAdj: {Number: 9, Value: "yes", Text: SettingOOMScoreAdj + " yes"}}}
	res, _ := Evaluate(in, State{})
	if f := findingOf(res.Findings, IDHeldValueInConfigFile); f != nil {
		t.Errorf("oom_shield's value in the config file raised %+v", f)
	}
}
