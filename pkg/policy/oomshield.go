package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RemedyOOMShield makes a fork child, not the server, the OOM killer's choice.
// A save or rewrite child's copy-on-write can grow to most of the dataset under
// writes; when it pushes a memory cgroup (or the host) over its limit, the kernel
// kills the process with the highest oom_score, which without a bias is the
// server itself: its whole dataset gone and every client cut off. Measured here:
// three servers in one cgroup v1 memory group whose saves came due together, and
// the OOM killer took a redis-server main process. With oom-score-adj on, it took a
// save child ("Background saving terminated by signal 9"): a failed save that
// stop_writes lifts in milliseconds and bgsave_retry repeats, and every server lived.
//
// The lever is Redis's own (6.2+): oom-score-adj relative adds oom-score-adj-values
// (master, replica, bgchild; default "0 200 800") to the score the process started
// with, so a unit's OOMScoreAdjust stays the base and the child gets +800. In
// Redis yes is the same value as relative (CONFIG GET answers yes after a set of
// relative, measured on 7.0, 8.0 and Valkey 8.0, 8.1); absolute would replace that
// base with the values themselves.
//
// When it is held: while the instance can fork (save points set, appendonly yes,
// or a master with replicas, whose full syncs fork) and the live value is no,
// Redis's default. It is left alone when the operator set yes, relative or
// absolute: their choice. It is given back when the instance no longer forks and
// when the guardian stops (a score nobody watches should not outlive the guardian
// that set it; the ledger is empty after a clean stop). An operator who changes it
// during the hold wins (the executor's reconcile yields): it is not taken again
// until the instance stops forking. Only oom-score-adj is held; values that give
// the child no more than the server are reported (oom_score_adj_ineffective),
// never changed. Where Redis refuses (ACL, a renamed CONFIG, a version before 6.2,
// no permission to write /proc/self/oom_score_adj), the refusal is reported
// (oom_shield_unavailable) and retried only after the shared backoff.
const RemedyOOMShield = "oom_shield"

// SettingOOMScoreAdj is the setting oom_shield holds; SettingOOMScoreAdjValues
// is read only, to tell a bias that does nothing.
const (
	SettingOOMScoreAdj       = "oom-score-adj"
	SettingOOMScoreAdjValues = "oom-score-adj-values"
)

// StandingHold reports whether a remedy's hold is its steady state rather than
// an episode: oom_shield holds for as long as the instance forks, so its entry
// says nothing is wrong (status exits 0 with it).
func StandingHold(remedy string) bool { return remedy == RemedyOOMShield }

// oomShieldValue is the value held: relative keeps a unit's OOMScoreAdjust as the base.
const oomShieldValue = "relative"

var oomShield = Def[OOMShieldConfig, oomShieldState]{
	Name:     RemedyOOMShield,
	Settings: []Setting{{Name: SettingOOMScoreAdj, Normalize: normalizeOOMScoreAdj, Valid: validOOMScoreAdj}},
	Defaults: func() *OOMShieldConfig {
		return &OOMShieldConfig{Limits: Limits{Enabled: true, MaxPerHour: 6}}
	},
	Decide:  decideOOMShield,
	Observe: observeOOMShield,
}

// OOMShieldConfig configures oom_shield: the keys every remedy has (Limits'
// Configure reads them), no others.
type OOMShieldConfig struct {
	Limits
}

type oomShieldState struct {
	// Refused is Redis's answer to the last CONFIG SET that failed ("" after a
	// success), reported until the setting is held or no longer wanted.
	Refused string
}

// validOOMScoreAdj accepts oom-score-adj's values (6.2+); Redis also takes the
// booleans' aliases, but the guardian sets and gives back only these.
func validOOMScoreAdj(v string) error {
	switch defaultNormalize(v) {
	case "no", "yes", "relative", "absolute":
		return nil
	}
	return errors.New("not no, yes, relative or absolute")
}

// normalizeOOMScoreAdj reads relative as yes: Redis stores them as one value and
// CONFIG GET answers yes, which must not look like an operator's change.
func normalizeOOMScoreAdj(v string) string {
	if v = defaultNormalize(v); v == "relative" {
		return "yes"
	}
	return v
}

// observeOOMShield remembers why a set failed, for the finding.
func observeOOMShield(st oomShieldState, o Outcome) oomShieldState {
	if o.Decision.Action != ActSet {
		return st
	}
	if o.OK {
		st.Refused = ""
	} else {
		st.Refused = o.Err
	}
	return st
}

// CanFork reports whether the instance forks children that copy its memory:
// save points, AOF (rewrites), or a master with replicas (full syncs). Save points
// a remedy holds off for a while (fork_budget defers a due save with save "")
// count: the save comes back, and the shield must not flap with it.
func CanFork(in Input) bool {
	cfg, info := in.Snapshot.Redis.Config, in.Snapshot.Redis.Info
	if h, held := in.Held[SettingSave]; held && strings.TrimSpace(h.Original) != "" {
		return true
	}
	return cfg.SavePointsSet() || cfg.AppendOnly() || (info.Role == "master" && info.ConnectedReplicas > 0)
}

// ReasonChildFirst is the reason oom_shield records with its hold: the fork
// child goes first to the OOM killer. (Not cgroup_oom_kill: the shield goes up
// before any kill, and a ledger entry naming one would send its reader looking
// for a kill that never happened.)
const ReasonChildFirst = "fork_child_first"

func decideOOMShield(in Input, r *OOMShieldConfig, st oomShieldState, sh *Shared) ([]Decision, []Finding, oomShieldState) {
	cfg := in.Snapshot.Redis.Config
	forks := CanFork(in)
	live, known := cfg[SettingOOMScoreAdj]
	held, isHeld := in.Held[SettingOOMScoreAdj]
	if !forks {
		sh.EndEpisode(RemedyOOMShield, SettingOOMScoreAdj)
		sh.EndSuppression(RemedyOOMShield)
	}
	if isHeld && held.Remedy == RemedyOOMShield {
		st.Refused = ""
		if forks && !in.Stopping {
			return nil, oomValuesFindings(in, r), st
		}
		detail := "the instance no longer forks: give the OOM killer's bias back"
		if in.Stopping {
			detail = "the guardian stops: give the OOM killer's bias back"
		}
		return []Decision{{Remedy: RemedyOOMShield, Action: ActUndo, Setting: SettingOOMScoreAdj, Value: held.Original,
			Reason: ReasonChildFirst, Detail: detail}}, nil, st
	}
	if !forks || isHeld || !r.Enabled {
		st.Refused = ""
		return nil, nil, st
	}
	if !known {
		if v := in.Snapshot.Redis.Info.Version; versionBefore(v, 6, 2) {
			return nil, []Finding{oomUnavailable(fmt.Sprintf("Redis %s has no oom-score-adj (it came in 6.2)", v),
				"upgrade to Redis 6.2 or later; until then, set the unit's OOMScoreAdjust lower than the default, so the OOM killer prefers other processes")}, st
		}
		return nil, nil, st // not in the reply: nothing to judge
	}
	if defaultNormalize(live) != "no" {
		st.Refused = ""
		return nil, oomValuesFindings(in, r), st // the operator's choice
	}
	if in.Stopping || sh.IsYielded(RemedyOOMShield, SettingOOMScoreAdj) {
		return nil, nil, st
	}
	var fs []Finding
	if st.Refused != "" {
		fs = append(fs, oomUnavailable(fmt.Sprintf("CONFIG SET oom-score-adj %s failed: %s", oomShieldValue, st.Refused), oomRefusalFix(st.Refused)))
	}
	return sh.Gate(r.Limits, in.Now, Decision{Remedy: RemedyOOMShield, Action: ActSet, Setting: SettingOOMScoreAdj, Value: oomShieldValue,
		Reason: ReasonChildFirst,
		Detail: "this instance forks: make its fork child, not the server, the OOM killer's first choice (oom-score-adj relative)"}), fs, st
}

// oomUnavailable is the finding of a shield Redis cannot put up.
func oomUnavailable(cause, fix string) Finding {
	return Finding{ID: IDOOMShieldUnavailable, Severity: Warning,
		Summary: "the OOM killer would take the server, not its fork child: oom-score-adj cannot be set",
		Cause:   cause, Fix: fix}
}

// oomRefusalFix names what to do about Redis's answer to CONFIG SET.
func oomRefusalFix(answer string) string {
	a := strings.ToLower(answer)
	switch {
	case strings.Contains(a, "noperm") || strings.Contains(a, "no permissions"):
		return "grant the guardian's ACL user +config|set (ACL SETUSER <user> +config|set), or set oom-score-adj relative in redis.conf"
	case strings.Contains(a, "unknown command"):
		return "CONFIG is renamed or disabled (rename-command): set the instance's config_command to its new name, or set oom-score-adj relative in redis.conf"
	case strings.Contains(a, "oom_score_adj"):
		return "Redis could not write /proc/self/oom_score_adj (see its log): check the process's sandbox (ProtectProc, a read-only /proc), or set the unit's OOMScoreAdjust instead"
	case strings.Contains(a, "unknown option") || strings.Contains(a, "unsupported config") || strings.Contains(a, "unknown config"):
		return "this server does not know oom-score-adj (6.2+): upgrade, or set the unit's OOMScoreAdjust lower than the default"
	}
	return "check the Redis log; set oom-score-adj relative in redis.conf to put the shield up without the guardian"
}

// oomValuesFindings warns when oom-score-adj is on but oom-score-adj-values gives
// the fork child no more than the server's own role: the bias then does nothing.
func oomValuesFindings(in Input, r *OOMShieldConfig) []Finding {
	raw, ok := in.Snapshot.Redis.Config[SettingOOMScoreAdjValues]
	f := strings.Fields(raw)
	if !ok || len(f) != 3 || !r.Enabled {
		return nil
	}
	var v [3]int
	for i, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil
		}
		v[i] = n
	}
	self, role := v[0], "master"
	if in.Snapshot.Redis.Info.Role == "slave" {
		self, role = v[1], "replica"
	}
	if v[2] > self {
		return nil
	}
	return []Finding{{ID: IDOOMScoreAdjIneffective, Severity: Warning,
		Summary: "oom-score-adj is on, but the fork child's score is no higher than the server's: the OOM killer may still take the server",
		Cause:   fmt.Sprintf("oom-score-adj-values %q gives the %s %d and the fork child %d", raw, role, self, v[2]),
		Fix:     "CONFIG SET oom-score-adj-values \"0 200 800\" (Redis's default) and the same line in redis.conf, so a fork child is killed before its server"}}
}

// versionBefore reports whether a version string ("6.0.16") is known to be older
// than major.minor; an unreadable one is not.
func versionBefore(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || (ma == major && mi < minor)
}
