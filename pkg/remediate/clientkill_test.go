package remediate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/pkg/events"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// seenMonitor is the MONITOR client_guard decided to kill, as its CLIENT LIST
// showed it.
var seenMonitor = monitor.Client{ID: 7, Addr: "10.0.0.5:51000", Cmd: "monitor", Flags: "O", Omem: 150 << 20, Age: time.Hour}

var killMonitor = policy.Decision{Remedy: policy.RemedyClientGuard, Action: policy.ActClientKill, Client: seenMonitor,
	MinOmem: 32 << 20, Reason: policy.IDMaxmemoryNearLimit, Detail: "client buffers fill maxmemory"}

// redisErr is an error reply of Redis.
type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

var _ redis.Error = redisErr("")

// TestClientKillChecksAgain: the executor kills only the client the decision saw,
// on its live CLIENT LIST entry: the same address and command, still not a
// replica, master link or no-evict client, its buffer still at least the size.
// Every kill is a remedy_applied event for client_guard (the metric counts it).
func TestClientKillChecksAgain(t *testing.T) {
	t.Parallel()
	line := "id=7 addr=10.0.0.5:51000 laddr=/s:0 fd=9 name=ops age=3600 idle=0 flags=O db=0 sub=0 psub=0 qbuf=0 omem=157286400 tot-mem=157300000 cmd=monitor user=default\n"
	for _, tc := range []struct {
		name     string
		live     string // CLIENT LIST ID's answer
		old      bool   // CLIENT LIST ID is refused (before 6.2)
		dryRun   bool
		wantKill bool
		wantErr  bool
	}{
		{name: "still the runaway MONITOR", live: line, wantKill: true},
		{name: "before 6.2: the whole list", live: "id=3 addr=x:1 flags=N omem=0 cmd=info\n" + line, old: true, wantKill: true},
		{name: "gone", live: ""},
		{name: "the id belongs to another client (a restarted Redis)", live: strings.Replace(line, "10.0.0.5:51000", "10.0.0.99:4000", 1)},
		{name: "another command", live: strings.Replace(line, "cmd=monitor", "cmd=get", 1)},
		{name: "now marked no-evict", live: strings.Replace(line, "flags=O ", "flags=Oe ", 1), wantErr: true},
		{name: "now a replica", live: strings.Replace(line, "flags=O ", "flags=S ", 1), wantErr: true},
		{name: "its buffer drained", live: strings.Replace(line, "omem=157286400", "omem=1024", 1)},
		{name: "dry run", live: line, dryRun: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var killed []string
			srv := &fakeRedis{reply: func(args []string) (any, error) {
				switch strings.Join(args, " ") {
				case "CLIENT LIST ID 7":
					if tc.old {
						return nil, redisErr("ERR syntax error")
					}
					return tc.live, nil
				case "CLIENT LIST":
					return tc.live, nil
				case "CLIENT KILL ID 7":
					killed = append(killed, "7")
					return int64(1), nil
				}
				return nil, errors.New("unexpected command " + strings.Join(args, " "))
			}}
			e, logs := newExecutor(t, srv, NewMemLedger())
			e.DryRun = tc.dryRun
			var counted []string
			e.OnEvent = func(n events.Name, remedy, _ string) { counted = append(counted, string(n)+" "+remedy) }
			o := e.Execute(context.Background(), killMonitor)
			if o.OK == tc.wantErr {
				t.Errorf("outcome %+v, want an error: %v", o, tc.wantErr)
			}
			if got := len(killed) > 0; got != tc.wantKill {
				t.Errorf("CLIENT KILL sent: %v, want %v (calls %v)", got, tc.wantKill, srv.Calls())
			}
			applied := countEvents(logs, events.RemedyApplied)
			if want := tc.wantKill || tc.dryRun; (applied == 1) != want {
				t.Errorf("%d remedy_applied events, want one: %v", applied, want)
			}
			if tc.wantKill {
				if len(counted) != 1 || counted[0] != "remedy_applied client_guard" {
					t.Errorf("events counted %v, want one remedy_applied of client_guard", counted)
				}
				f := logs.FilterField(events.Field(events.RemedyApplied)).All()[0].ContextMap()
				for k, v := range map[string]any{"client_id": int64(7), "client_addr": "10.0.0.5:51000", "client_name": "ops",
					"client_cmd": "monitor", "client_flags": "O", "omem_bytes": int64(157286400), "age_seconds": 3600.0, "result": "killed"} {
					if f[k] != v {
						t.Errorf("log field %s = %v, want %v", k, f[k], v)
					}
				}
			}
		})
	}
}
