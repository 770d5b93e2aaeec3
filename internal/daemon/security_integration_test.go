package daemon_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
	"github.com/redis-guardian/redis-guardian/pkg/remediate"
)

// TestRestoreRefusesForgedLedger: a ledger entry no remedy makes (the review's
// requirepass) is refused by root's `restore` and by `run`, with a message naming the
// file and the entry; Redis's password is not set and the file stays as it is.
func TestRestoreRefusesForgedLedger(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{TCP: true})
	c := srv.Client(t)
	runID := srv.Info(t)["run_id"]
	stateDir, _, _ := testredis.RedisOwnedDir(t)
	const name = "forged"
	ledger := remediate.LedgerPath(stateDir, name)
	forged := fmt.Sprintf(`{"version":1,"changes":[{"instance":%q,"addr":%q,"run_id":%q,"setting":"requirepass","original":"attacker","value":"","remedy":"stop_writes","reason":"misconf_rdb","time":"2026-12-01T00:00:00Z","applied":true}]}`,
		name, srv.Addr, runID)
	if err := os.WriteFile(ledger, []byte(forged), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{name, srv.Addr})

	out, err := runGuardianCommand(t, "restore", "-c", cfg, "--state-dir", stateDir)
	t.Logf("restore (%v):\n%s", err, out)
	if err == nil {
		t.Errorf("restore succeeded on a forged ledger")
	}
	for _, want := range []string{ledger, "entry 1", `"requirepass"`} {
		if !strings.Contains(out, want) {
			t.Errorf("restore's refusal does not name %s", want)
		}
	}
	if got := configGet(t, c, "requirepass"); got != "" {
		t.Fatalf("requirepass = %q after restore, want it unset", got)
	}

	// run: the instance is watched with remedies off, and says why.
	p := startBinary(t, "-c", cfg)
	e := p.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDLedgerUnreadable}, nil)
	if !strings.Contains(e.str("cause"), "requirepass") || !strings.Contains(e.str("cause"), ledger) {
		t.Errorf("ledger_unreadable's cause %q does not name the file and the entry", e.str("cause"))
	}
	if got := configGet(t, c, "requirepass"); got != "" {
		t.Errorf("requirepass = %q while run watches, want it unset", got)
	}
	if b := readFile(t, ledger); !bytes.Equal(b, []byte(forged)) {
		t.Errorf("the forged ledger was rewritten: %s", b)
	}
}

// TestRestoreNeverFollowsPlantedLinks: the review's first hole through the real
// binary. Root's `restore` on a state dir where redis planted <inst>.lock and
// <inst>.reserve as links to root's files refuses, and both files keep their
// owner, mode and content.
func TestRestoreNeverFollowsPlantedLinks(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, testredis.Options{TCP: true})
	for _, planted := range []string{".lock", ".reserve"} {
		t.Run(planted, func(t *testing.T) {
			stateDir, _, _ := testredis.RedisOwnedDir(t)
			const name = "main"
			// A real ledger entry, so restore has something to do.
			ch := remediate.Change{Instance: name, Addr: srv.Addr, Setting: policy.SettingStopWrites, Original: "yes", Value: "no",
				Remedy: policy.RemedyStopWrites, Reason: policy.IDMisconfRDB}
			l, err := remediate.OpenFileLedger(stateDir, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Record(ch); err != nil {
				t.Fatal(err)
			}
			_ = l.Close()
			target := filepath.Join(t.TempDir(), "root-file")
			if err := os.WriteFile(target, []byte("root only\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(stateDir, name+planted)
			if err := os.Remove(link); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			writeConfig(t, cfg, stateDir, fastBinaryConfig, [2]string{name, srv.Addr})
			out, err := runGuardianCommand(t, "restore", "-c", cfg, "--state-dir", stateDir)
			t.Logf("restore (%v):\n%s", err, out)
			if err == nil || !strings.Contains(out, link) || !strings.Contains(out, "symbolic link") {
				t.Errorf("restore did not refuse the planted %s naming it", link)
			}
			fi, err := os.Stat(target)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t).Uid; st != 0 || fi.Mode().Perm() != 0o600 || string(readFile(t, target)) != "root only\n" {
				t.Errorf("root's file changed: owner %d, mode %v, content %.40q", st, fi.Mode(), readFile(t, target))
			}
		})
	}
}
