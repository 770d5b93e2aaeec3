package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// kind is a fault the soak injects.
type kind string

// The faults, in the order the report lists them.
const (
	kForkFail      kind = "fork_fail"      // RLIMIT_NPROC of the server lowered to 1, then BGSAVE
	kDiskFull      kind = "disk_full"      // the tmpfs data dir filled, then BGSAVE
	kEACCES        kind = "eacces"         // the data dir chowned to root, then BGSAVE
	kKillChild     kind = "kill_child"     // a slowed save child SIGKILLed
	kRedisRestart  kind = "redis_restart"  // redis-server SIGKILLed and started again
	kGuardianKill  kind = "guardian_kill"  // the guardian SIGKILLed, started again after the fault's duration
	kOperatorSet   kind = "operator_set"   // an operator's CONFIG SET of a held setting
	kConfigRewrite kind = "config_rewrite" // an operator's CONFIG REWRITE
	kMonitor       kind = "monitor"        // a runaway MONITOR that never reads
	kOOMGrowth     kind = "oom_growth"     // the dataset grows past maxmemory
	kReplica       kind = "replica"        // demoted to a replica of the first instance, promoted back at the end
)

// kindSpec is how often a kind is drawn and how long it lasts.
type kindSpec struct {
	kind       kind
	weight     int
	minD, maxD time.Duration // 0, 0: instantaneous
	global     bool          // not about one instance (the guardian)
}

// kinds lists every fault with its weight and duration range. Instantaneous ones
// (an operator's command) have none; the others are always cleared after theirs.
var kinds = []kindSpec{
	{kForkFail, 10, 3 * time.Second, 15 * time.Second, false},
	{kDiskFull, 8, 3 * time.Second, 15 * time.Second, false},
	{kEACCES, 8, 3 * time.Second, 15 * time.Second, false},
	{kKillChild, 8, 3 * time.Second, 6 * time.Second, false},
	{kRedisRestart, 4, 0, 0, false},
	{kGuardianKill, 4, 500 * time.Millisecond, 5 * time.Second, true},
	{kOperatorSet, 6, 0, 0, false},
	{kConfigRewrite, 5, 0, 0, false},
	{kMonitor, 4, 35 * time.Second, 45 * time.Second, false},
	{kOOMGrowth, 3, 3 * time.Second, 10 * time.Second, false},
	{kReplica, 4, 5 * time.Second, 20 * time.Second, false},
}

// step is one fault of the schedule: at At after the start, on instance Inst (-1
// for the guardian), for Dur.
type step struct {
	At   time.Duration
	Kind kind
	Inst int
	Dur  time.Duration
}

// schedule draws the faults of a run of length d over n instances from seed: the
// same seed, length, instances and kinds give the same schedule. A fault never
// overlaps one of its own kind on the same instance (nor a guardian kill
// another), so every injection has its own undo; faults of different kinds do
// overlap, on one instance and across them. The replica kind is never drawn for
// instance 0, the master the others replicate from.
func schedule(seed uint64, d time.Duration, n int, enabled map[kind]bool) []step {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var specs []kindSpec
	total := 0
	for _, s := range kinds {
		if enabled[s.kind] {
			specs = append(specs, s)
			total += s.weight
		}
	}
	if total == 0 || n == 0 {
		return nil
	}
	busy := map[[2]int]time.Duration{} // (instance, kind index) -> busy until
	var out []step
	for at := 3 * time.Second; ; {
		at += time.Duration(1500+rng.IntN(4500)) * time.Millisecond
		if at >= d {
			return out
		}
		s, ki := pick(rng, specs, total)
		inst := rng.IntN(n)
		if s.global {
			inst = -1
		}
		dur := time.Duration(0)
		if s.maxD > 0 {
			dur = s.minD + time.Duration(rng.Int64N(int64(s.maxD-s.minD)+1))
		}
		key := [2]int{inst, ki}
		if busy[key] > at || at+dur > d || (s.kind == kReplica && (inst == 0 || n < 2)) {
			continue
		}
		// A moment between faults of one kind, so each is seen on its own.
		busy[key] = at + dur + 2*time.Second
		out = append(out, step{At: at, Kind: s.kind, Inst: inst, Dur: dur})
	}
}

func pick(rng *rand.Rand, specs []kindSpec, total int) (kindSpec, int) {
	r := rng.IntN(total)
	for i, s := range specs {
		if r < s.weight {
			return s, i
		}
		r -= s.weight
	}
	return specs[len(specs)-1], len(specs) - 1
}

// printSchedule writes the schedule, one fault a line, with instance names.
func printSchedule(w io.Writer, steps []step, names []string) {
	for _, s := range steps {
		who := "guardian"
		if s.Inst >= 0 {
			who = names[s.Inst]
		}
		fmt.Fprintf(w, "  %8s  %-15s %-11s %s\n", s.At.Round(time.Millisecond), s.Kind, who, s.Dur.Round(time.Millisecond))
	}
}
