package policy

import (
	"fmt"
	"sort"
)

// configFileFindings compares Redis's own config file with what the guardian
// holds. A held value in the file (put there by a CONFIG REWRITE, an operator's
// or Sentinel's at a failover) would outlive the episode: the next restart would
// run with it. A `stop-writes-on-bgsave-error no` the guardian does not hold
// means the file itself turns the protection off.
func configFileFindings(in Input) []Finding {
	file := in.Snapshot.Redis.File
	if !file.Known {
		return nil
	}
	var out []Finding
	settings := make([]string, 0, len(in.Held))
	for s := range in.Held {
		settings = append(settings, s)
	}
	sort.Strings(settings)
	for _, s := range settings {
		h := in.Held[s]
		line, ok := file.Lines[s]
		if !ok || !SameValue(s, line.Value, h.Value) || h.Remedy == RemedyOOMShield {
			// oom_shield's value in the file is harmless: a restart with it runs
			// shielded, which the guardian then leaves alone as the operator's.
			continue
		}
		f := Finding{ID: IDHeldValueInConfigFile, Severity: Critical,
			Summary: fmt.Sprintf("Redis's config file now says %s %s, the value the guardian holds only for this episode", s, h.Value),
			Cause:   fmt.Sprintf("%s line %d: %q (a CONFIG REWRITE, e.g. Sentinel's at a failover, wrote the runtime value); the original is %s", file.Path, line.Number, line.Text, h.Original),
			Fix: fmt.Sprintf("the guardian runs CONFIG REWRITE after it gives %s back, which puts the file right; if Redis restarts before that, set `%s %s` in %s line %d by hand",
				s, s, h.Original, file.Path, line.Number)}
		if h.Remedy == RemedyReplicaGuard {
			// On a replica the held value is what keeps it alive, for as long as it
			// is one (Sentinel rewrites every replica's file at a failover): a
			// warning, and a fix that does not take the protection away.
			f.Severity = Warning
			f.Fix = fmt.Sprintf("nothing while this is a replica (the value protects it); when it is promoted the guardian gives %s back and runs CONFIG REWRITE. Before restarting it as a master by hand, set `%s %s` in %s line %d",
				s, s, h.Original, file.Path, line.Number)
		}
		out = append(out, f)
	}
	if _, held := in.Held[SettingStopWrites]; !held {
		if line, ok := file.Lines[SettingStopWrites]; ok && SameValue(SettingStopWrites, line.Value, "no") {
			out = append(out, Finding{ID: IDConfigFileUnprotected, Severity: Warning,
				Summary: "Redis's config file turns stop-writes-on-bgsave-error off: after a restart, failed snapshots go unnoticed by clients",
				Cause:   fmt.Sprintf("%s line %d: %q, and the guardian holds no such change", file.Path, line.Number, line.Text),
				Fix: fmt.Sprintf("if nobody chose this on purpose (a CONFIG REWRITE during an old hold, a copied config), set `stop-writes-on-bgsave-error yes` in %s line %d; redis-guardian lifts MISCONF by itself when a save fails",
					file.Path, line.Number)})
		}
	}
	return out
}

// fileValues records, in each set decision, what the config file says for its
// setting now, so the executor can tell later whether a CONFIG REWRITE put the
// held value into the file during the hold.
func fileValues(in Input, ds []Decision) {
	f := in.Snapshot.Redis.File
	if !f.Known {
		return
	}
	for i := range ds {
		if ds[i].Action == ActSet && ds[i].FileValue == "" {
			// A remedy that knows better what the file means keeps its value
			// (fork_budget: no save line is the default save points, not "").
			ds[i].FileValue = f.Lines[ds[i].Setting].Value
		}
	}
}
