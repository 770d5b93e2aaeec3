package daemon_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/events"
	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestOOMShieldHeld: with the guardian running (oom_shield on by default), a
// server with save points gets oom-score-adj relative (CONFIG GET answers yes, the
// same value in Redis) through the ledger; a save
// child's /proc/PID/oom_score_adj is then 800 above its server's (the default
// oom-score-adj-values "0 200 800"); when the guardian stops it gives the setting
// back (no) and the ledger is empty.
func TestOOMShieldHeld(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{Build: b})
			c := srv.Client(t)
			if got := configGet(t, c, policy.SettingOOMScoreAdj); got != "no" {
				t.Fatalf("oom-score-adj starts as %q, want Redis's default no", got)
			}
			g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, ConfigRefresh: time.Second, Remedies: shieldOn})
			applied := g.waitEntry(fieldsEq{"event": string(events.RemedyApplied), "remedy": policy.RemedyOOMShield}, nil)
			if applied.str("new_value") != "relative" || applied.str("setting") != policy.SettingOOMScoreAdj {
				t.Errorf("remedy_applied = %s, want oom-score-adj relative", applied)
			}
			// Redis stores relative as yes, and CONFIG GET answers yes.
			waitConfig(t, c, policy.SettingOOMScoreAdj, "yes")
			ch := ledgerChanges(t, g.StateDir)
			if len(ch) != 1 || ch[0].Setting != policy.SettingOOMScoreAdj || ch[0].Value != "relative" || ch[0].Original != "no" || ch[0].Remedy != policy.RemedyOOMShield {
				t.Fatalf("ledger %+v, want oom_shield's oom-score-adj relative (original no)", ch)
			}

			srv.SlowChild(t)
			if err := c.BgSave(ctxT(t)).Err(); err != nil {
				t.Fatalf("BGSAVE: %v", err)
			}
			child := srv.ChildPID(t, waitLong)
			// The child writes its own score right after the fork: it may still
			// show the server's for a moment.
			server := oomScoreAdj(t, srv.PID)
			want := min(server+800, 1000)
			kid := oomScoreAdj(t, child)
			for deadline := time.Now().Add(waitLong); kid != want && time.Now().Before(deadline); kid = oomScoreAdj(t, child) {
				time.Sleep(poll)
			}
			t.Logf("oom_score_adj: server %d %d, save child %d %d", srv.PID, server, child, kid)
			if kid != want {
				t.Errorf("save child's oom_score_adj %d, want %d (the server's %d + 800)", kid, want, server)
			}
			// SIGUSR1 is Redis's own quiet abort: the save does not count as failed.
			if err := syscall.Kill(child, syscall.SIGUSR1); err != nil {
				t.Fatalf("abort the save child: %v", err)
			}
			configSet(t, c, "rdb-key-save-delay", "0")

			if err := g.Stop(); err != nil {
				t.Fatalf("guardian Run: %v", err)
			}
			if got := configGet(t, c, policy.SettingOOMScoreAdj); got != "no" {
				t.Errorf("after the guardian stopped oom-score-adj is %q, want no given back", got)
			}
			g.waitEntry(fieldsEq{"event": string(events.RemedyUndone), "remedy": policy.RemedyOOMShield}, nil)
			if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
				t.Errorf("the ledger still holds %+v", ch)
			}
		})
	}
}

// TestOOMShieldRealOOM is the headline: a server in a memory cgroup (v1 here, as on
// RHEL 8) filled with 40 MiB of values, a slowed BGSAVE, and every key
// overwritten under it, so the child's copy-on-write pushes the group over a
// limit that leaves it 24 MiB. With the guardian running (oom_shield on), the
// group's OOM killer takes the save child ("Background saving terminated by
// signal 9") and the server lives: same pid, answering, its dataset kept. The
// same scenario with oom_shield disabled (oom-score-adj no: server and child both
// at 0) was run on every build here: each time the one OOM kill took the server
// main process (oomScenario returned false, 4 of 4), the "before" this fixes.
func TestOOMShieldRealOOM(t *testing.T) {
	for _, b := range testredis.Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			survived, log := oomScenario(t, b, true)
			if !survived {
				t.Fatalf("with the shield the OOM killer took the server; log:\n%s", log)
			}
		})
	}
}

// shieldOn turns oom_shield on (testRemedies turns it off for the other tests;
// its default is on).
func shieldOn(rs policy.Remedies) { policy.ConfigOf[*policy.OOMShieldConfig](rs).Enabled = true }

// oomScenario runs the cgroup OOM with the guardian (oom_shield on or off) and
// reports whether the server survived, with the server's log tail.
func oomScenario(t *testing.T, b testredis.Build, shield bool) (bool, string) {
	const (
		keys      = 40000
		valueSize = 1000 // ~40 MiB of incompressible values
		room      = 24 << 20
	)
	cg := testredis.MemoryCgroup(t, 0)
	srv := testredis.Start(t, testredis.Options{Build: b, MemCgroup: cg, Args: []string{"--rdbcompression", "no"}})
	c := srv.Client(t)
	pid := srv.PID
	g := startGuardian(t, srv, guardianOpts{Interval: 200 * time.Millisecond, ConfigRefresh: time.Second, Remedies: func(rs policy.Remedies) {
		policy.ConfigOf[*policy.OOMShieldConfig](rs).Enabled = shield
	}})
	want := "no"
	if shield {
		want = "yes" // relative, as CONFIG GET answers it
		waitConfig(t, c, policy.SettingOOMScoreAdj, want)
	} else {
		g.waitTicks(5)
	}
	srv.Fill(t, keys, valueSize)
	ws := cg.WorkingSet(t)
	limit := ws + room
	t.Logf("working set %d MiB, limit %d MiB", ws>>20, limit>>20)
	configSet(t, c, "rdb-key-save-delay", "1000") // 1 ms a key: the child lives ~40 s
	cg.SetLimit(t, limit)
	killsBefore := cg.OOMKills(t)
	if err := c.BgSave(ctxT(t)).Err(); err != nil {
		t.Fatalf("BGSAVE: %v", err)
	}
	child := srv.ChildPID(t, waitLong)
	t.Logf("oom-score-adj %s: oom_score_adj server %d, child %d", configGet(t, c, policy.SettingOOMScoreAdj), oomScoreAdj(t, pid), oomScoreAdj(t, child))
	_ = srv.Overwrite(c, keys, valueSize) // the server may be the one the OOM killer took

	deadline := time.Now().Add(time.Minute)
	for cg.OOMKills(t) == killsBefore && time.Now().Before(deadline) {
		time.Sleep(poll)
	}
	kills := cg.OOMKills(t) - killsBefore
	serverAlive, childAlive := processAlive(pid), processAlive(child)
	logText, _ := os.ReadFile(srv.LogFile)
	t.Logf("oom kills %d; server %d alive %v, child %d alive %v", kills, pid, serverAlive, child, childAlive)
	if kills == 0 {
		t.Fatalf("the group's OOM killer never ran (limit %d MiB); log:\n%s", limit>>20, srv.LogTail(20))
	}
	// Room again, so the guardian's retried save succeeds and it can give back.
	cg.SetLimit(t, limit+512<<20)
	if !serverAlive {
		return false, srv.LogTail(20)
	}
	deadline = time.Now().Add(waitLong)
	for !strings.Contains(string(logText), "Background saving terminated by signal 9") && time.Now().Before(deadline) {
		time.Sleep(poll)
		logText, _ = os.ReadFile(srv.LogFile)
	}
	if !strings.Contains(string(logText), "Background saving terminated by signal 9") || childAlive {
		t.Errorf("want the save child killed by the OOM killer (\"terminated by signal 9\"); log:\n%s", srv.LogTail(20))
	}
	// DBSIZE, not PING: until the guardian lifts the MISCONF of the failed save,
	// Redis answers PING with it.
	if n, err := c.DBSize(ctxT(t)).Result(); err != nil || n < keys {
		t.Fatalf("after the OOM kill DBSIZE answers %d (%v), want the server with its %d keys", n, err, keys)
	}
	if got := configGet(t, c, policy.SettingOOMScoreAdj); got != want {
		t.Errorf("oom-score-adj %q, want %q", got, want)
	}
	return true, srv.LogTail(20)
}

func oomScoreAdj(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/oom_score_adj")
	if err != nil {
		t.Fatalf("read oom_score_adj of %d: %v", pid, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("oom_score_adj of %d: %v", pid, err)
	}
	return n
}

// processAlive: the pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestOOMShieldRefused: where Redis cannot put the shield up, a finding names
// Redis's answer, nothing is recorded, and the set is not retried within the
// backoff (10 s at first): an ACL user without +config|set, and a server that
// may not write its own oom_score_adj (oom-score-adj-values asking the master for
// -100, below its start, needs CAP_SYS_RESOURCE, which the redis user lacks).
func TestOOMShieldRefused(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		setup      func(t *testing.T, c *redis.Client) guardianOpts
	}{
		{"acl_denied", "NOPERM", func(t *testing.T, c *redis.Client) guardianOpts {
			if err := c.Do(ctxT(t), "ACL", "SETUSER", "guard", "on", ">pw", "~*", "&*", "+@all", "-config|set").Err(); err != nil {
				t.Fatalf("ACL SETUSER: %v", err)
			}
			return guardianOpts{Username: "guard", Password: "pw"}
		}},
		{"proc_not_writable", "oom_score_adj", func(t *testing.T, c *redis.Client) guardianOpts {
			configSet(t, c, policy.SettingOOMScoreAdjValues, "-100 200 800")
			return guardianOpts{}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testredis.Start(t, testredis.Options{})
			c := srv.Client(t)
			o := tc.setup(t, c)
			o.Interval, o.ConfigRefresh, o.Remedies = 200*time.Millisecond, time.Second, shieldOn
			g := startGuardian(t, srv, o)
			f := g.waitEntry(fieldsEq{"event": string(events.FindingRaised), "finding": policy.IDOOMShieldUnavailable}, nil)
			if !strings.Contains(f.str("cause"), tc.want) {
				t.Errorf("%s cause %q does not name %q", policy.IDOOMShieldUnavailable, f.str("cause"), tc.want)
			}
			ticks := g.observe(3 * time.Second)
			failed := g.entries(fieldsEq{"event": string(events.RemedyFailed), "remedy": policy.RemedyOOMShield})
			t.Logf("%d ticks, %d failed sets", ticks, len(failed))
			if len(failed) != 1 {
				t.Errorf("%d failed sets of oom-score-adj in %d ticks, want 1 (backoff):\n%s", len(failed), ticks, g.dump())
			}
			if got := configGet(t, c, policy.SettingOOMScoreAdj); got != "no" {
				t.Errorf("oom-score-adj %q, want no", got)
			}
			if ch := ledgerChanges(t, g.StateDir); len(ch) != 0 {
				t.Errorf("ledger claims %+v though nothing could be applied", ch)
			}
		})
	}
}
