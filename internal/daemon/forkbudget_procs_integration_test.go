package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/status"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// TestForkBudgetAcrossGuardianProcesses: the fork budget is the host's, not one
// process's. Three guardian binaries (as three redis-guardian@ units run), each
// with its own config, state dir and metrics port, watch one server each and
// share only runtime_dir; the servers' automatic saves come due together. An
// observer of the servers' own INFO never sees two children at once, every
// server saves, `status` names the holder of the slot while a child runs (the
// slot files, read by any process), and afterwards save is back at its original
// and every ledger empty. TestForkBudgetRealSaves shows the same servers run
// their children at once without a guardian.
func TestForkBudgetAcrossGuardianProcesses(t *testing.T) {
	t.Parallel()
	srvs := startSavesDueTogether(t, testredis.Build{})
	runtimeDir := t.TempDir()
	cfgs := make([]string, len(srvs))
	stateDirs := make([]string, len(srvs))
	procs := make([]*proc, len(srvs))
	for i, s := range srvs {
		stateDirs[i] = t.TempDir()
		cfgs[i] = filepath.Join(t.TempDir(), "config.yaml")
		extra := fmt.Sprintf("runtime_dir: %s\nmetrics_listen: 127.0.0.1:%d\n", runtimeDir, testredis.FreePort(t))
		writeConfig(t, cfgs[i], stateDirs[i], extra, [2]string{fmt.Sprintf("g%d", i), s.Socket})
		procs[i] = startBinary(t, "-c", cfgs[i], "--interval", "500ms")
	}
	for _, p := range procs {
		p.waitOutput(eventRE(string(events.Started)))
	}
	// The guardians may take longer to start than a save point's 5 s on a
	// loaded machine: the saves come due together from now.
	saveTogether(t, srvs)
	o, stop := observeForks(t, srvs)
	writeOneKeyEach(t, srvs)

	// While the children run one after another, status (of any guardian: here
	// the first's, which holds no slot most of the time) names the holder.
	var holders []string
	deadline := time.Now().Add(waitLong)
	for holders == nil {
		out, _ := runGuardianCommand(t, "status", "-c", cfgs[0], "--format", "json")
		var r status.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("status --format json: %v\n%s", err, out)
		}
		if r.Fork != nil && len(r.Fork.Holders) == 1 && strings.HasPrefix(r.Fork.Holders[0], "g") {
			holders = r.Fork.Holders
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never named a holder of the fork slot within %s; last report's fork_slots: %+v", waitLong, r.Fork)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("status saw the slot held by %q", holders[0])

	waitAllSaved(t, o, 60*time.Second)
	stop()
	most, saves := o.snapshot()
	t.Logf("three guardian processes: %d fork children at once, saves %v", most, saves)
	if most != 1 {
		t.Errorf("%d fork children ran at once across three guardian processes, want 1", most)
	}
	for i, s := range srvs {
		waitFor(t, fmt.Sprintf("server %d's save back at %q", i, forkBudgetSave), func() bool {
			got, err := s.Client(t).ConfigGet(context.Background(), "save").Result()
			return err == nil && got["save"] == forkBudgetSave
		})
	}
	for i, p := range procs {
		if err := p.signal(syscall.SIGTERM); err != nil {
			t.Errorf("guardian %d: SIGTERM: %v", i, err)
		}
		cs, err := remediate.ReadLedger(remediate.LedgerPath(stateDirs[i], fmt.Sprintf("g%d", i)))
		if err != nil {
			t.Errorf("guardian %d: ledger: %v", i, err)
		}
		for _, c := range cs {
			if c.Remedy == policy.RemedyForkBudget {
				t.Errorf("guardian %d left %+v in its ledger", i, c)
			}
		}
	}
}
