package policy

import (
	"strings"
	"testing"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

func TestConfigFileFindings(t *testing.T) {
	t.Parallel()
	file := func(value string) monitor.ConfigFileReading {
		return monitor.ConfigFileReading{Path: "/etc/redis/redis.conf", Known: true, Lines: map[string]monitor.ConfigFileLine{
			SettingStopWrites: {Number: 7, Value: value, Text: SettingStopWrites + " " + value}}}
	}
	for _, tc := range []struct {
		name string
		file monitor.ConfigFileReading
		held bool
		want string // the finding id, "" for none
	}{
		{name: "held value written into the file", file: file("no"), held: true, want: IDHeldValueInConfigFile},
		{name: "held, the file keeps the original", file: file("yes"), held: true},
		{name: "not held, the file says no", file: file("no"), want: IDConfigFileUnprotected},
		{name: "not held, the file says yes", file: file("yes")},
		{name: "file unknown", file: monitor.ConfigFileReading{}, held: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := decideInput()
			in.Snapshot.Redis.File = tc.file
			if tc.held {
				holdStopWrites(&in)
			}
			res, _ := Evaluate(in, State{})
			got := ""
			for _, f := range res.Findings {
				if f.ID == IDHeldValueInConfigFile || f.ID == IDConfigFileUnprotected {
					if got != "" {
						t.Fatalf("two config file findings: %q and %q", got, f.ID)
					}
					got = f.ID
					if f.Cause == "" || f.Fix == "" {
						t.Errorf("finding %+v lacks a cause or a fix", f)
					}
				}
			}
			if got != tc.want {
				t.Errorf("finding %q, want %q", got, tc.want)
			}
		})
	}
}

// TestConfigFileFindingOnAReplica: a held value in the file of a replica the
// guard holds is what protects it: a warning whose fix keeps the protection.
func TestConfigFileFindingOnAReplica(t *testing.T) {
	t.Parallel()
	in := decideInput()
	asReplica(&in)
	holdStopWritesBy(&in, RemedyReplicaGuard)
	in.Snapshot.Redis.File = monitor.ConfigFileReading{Path: "/etc/redis/redis.conf", Known: true, Lines: map[string]monitor.ConfigFileLine{
		SettingStopWrites: {Number: 7, Value: "no", Text: SettingStopWrites + " no"}}}
	for _, f := range configFileFindings(in) {
		if f.ID == IDHeldValueInConfigFile && f.Severity == Warning && strings.Contains(f.Fix, "nothing while this is a replica") {
			return
		}
	}
	t.Errorf("findings %+v, want a warning that keeps the replica's protection", configFileFindings(in))
}
