package config

import (
	"fmt"
	"strings"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// instances validates the instances list; an empty one watches DefaultAddr. Each
// instance starts from the global thresholds, remedies and ignore_findings.
func (v *validator) instances(raw []rawInstance, ignore []string, thr policy.Thresholds, rem policy.Remedies) []Instance {
	if len(raw) == 0 {
		raw = []rawInstance{{Addr: DefaultAddr}}
	}
	names := map[string]int{}
	out := make([]Instance, 0, len(raw))
	for i := range raw {
		out = append(out, v.instance(i, &raw[i], names, ignore, thr, rem))
	}
	v.forkSlots(out)
	return out
}

// forkSlots insists on one max_concurrent for every instance that uses the
// host's fork slots: it is the number of slot files, and an instance counting
// more of them than another would take a slot the other believes does not
// exist. (Guardian processes with other configs cannot be checked from here:
// README says they must agree.)
func (v *validator) forkSlots(ins []Instance) {
	first := -1
	for i, in := range ins {
		fb := policy.ConfigOf[*policy.ForkBudgetConfig](in.Remedies)
		if fb == nil || !fb.Enabled {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		if want := policy.ConfigOf[*policy.ForkBudgetConfig](ins[first].Remedies).MaxConcurrent; fb.MaxConcurrent != want {
			v.addf(fmt.Sprintf("instances[%d].remedies.fork_budget.max_concurrent", i),
				"%d differs from instances[%d]'s %d: the host's fork slots are one budget, every instance must count the same slots", fb.MaxConcurrent, first, want)
		}
	}
}

// instance validates instances[i]; names maps the names taken so far to their index.
// Its marks are where the host pass's findings go (hostFiles marks the same places).
func (v *validator) instance(i int, ri *rawInstance, names map[string]int, ignore []string, thr policy.Thresholds, rem policy.Remedies) Instance {
	p := fmt.Sprintf("instances[%d]", i)
	v.mark()
	in := Instance{
		Name: ri.Name, Addr: ri.Addr, Username: ri.Username, Password: ri.Password,
		PasswordFile: ri.PasswordFile, ConfigCommand: "CONFIG", HostChecks: monitor.HostChecksAuto,
		LogFile: ri.LogFile, Thresholds: thr,
	}
	v.addr(p+".addr", in.Addr)
	v.name(p+".name", i, &in, names)
	v.password(p, in.Password, in.PasswordFile)
	v.mark() // password_file
	in.TLS = v.tls(p+".tls", ri.TLS)
	v.mark() // the tls files
	v.configCommand(p+".config_command", ri.ConfigCommand, &in.ConfigCommand)
	v.hostChecks(p+".host_checks", ri.HostChecks, &in.HostChecks)
	v.ignore(p+".ignore_findings", ri.Ignore)
	in.IgnoreFindings = append(append([]string(nil), ignore...), ri.Ignore...)
	v.thresholds(p+".thresholds", ri.Thresholds, &in.Thresholds)
	in.Remedies = rem.Clone()
	v.remedies(p+".remedies", &ri.Remedies, in.Remedies)
	return in
}

// name gives an unnamed instance a name derived from its address, and insists on
// names that are unique and safe in file names and log fields.
func (v *validator) name(path string, i int, in *Instance, names map[string]int) {
	if in.Name == "" {
		in.Name = defaultName(in.Addr, i)
	}
	if !nameRE.MatchString(in.Name) {
		v.addf(path, "%q must be 1-64 characters of A-Z a-z 0-9 _ . - (it names state files and log fields)", in.Name)
	}
	if j, dup := names[in.Name]; dup {
		v.addf(path, "%q is already used by instances[%d]", in.Name, j)
	}
	names[in.Name] = i
}

func (v *validator) configCommand(path string, s *string, dst *string) {
	if s == nil {
		return
	}
	if *s == "" || strings.ContainsAny(*s, " \t\r\n") {
		v.addf(path, "%q must be the single word CONFIG was renamed to", *s)
		return
	}
	*dst = *s
}

// hostChecks reads the instance's host_checks key: whether the running guardian
// reads the host (/proc, the data directory) beside Redis.
func (v *validator) hostChecks(path string, s *string, dst *monitor.HostChecks) {
	if s == nil {
		return
	}
	switch hc := monitor.HostChecks(*s); hc {
	case monitor.HostChecksAuto, monitor.HostChecksOn, monitor.HostChecksOff:
		*dst = hc
	default:
		v.addf(path, "%q is not one of auto, on, off", *s)
	}
}
