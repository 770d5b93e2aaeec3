package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// stormResult is one side of figure 7: an AOF rewrite storm under a fork fault.
type stormResult struct {
	window        time.Duration
	incrFiles     int           // INCR files the attempts added
	forkAttempts  int           // "Can't rewrite append only file in background: fork" lines
	toRewrite     time.Duration // from the fault's end to a successful rewrite
	rewriteFolded bool          // the INCR files were folded back
}

// measureStorm runs a fork fault of window on a Redis with AOF on whose automatic
// rewrite is due, Redis alone and with the guardian (shipped defaults; in quick
// mode rewrite_retry's backoff is short, so the smoke run stays short).
func measureStorm(t *benchT, window time.Duration, quick, verbose bool) map[string]stormResult {
	out := map[string]stormResult{}
	for _, mode := range []string{replAlone, replGuardian} {
		var res stormResult
		err := scenario("aof rewrite storm / "+mode, verbose, func(t *benchT) { res = stormRun(t, window, mode == replGuardian, quick) })
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		out[mode] = res
	}
	return out
}

func stormRun(t *benchT, window time.Duration, guarded, quick bool) stormResult {
	srv := testredis.Start(t, testredis.Options{AppendOnly: true, Args: []string{"--auto-aof-rewrite-min-size", "64mb"}})
	srv.Fill(t, 2000, 64)
	c := srv.Client(t)
	if guarded {
		o := inprocOpts{interval: time.Second}
		if quick {
			o.remedies = func(rs policy.Remedies) {
				r := policy.ConfigOf[*policy.RewriteRetryConfig](rs)
				r.InitialBackoff, r.MaxBackoff = time.Second, 2*time.Second
			}
		}
		startInproc(t, srv, o)
		time.Sleep(1500 * time.Millisecond) // a tick or two before the fault
	}
	before := countIncr(t, srv)
	logBefore := logSize(t, srv)
	lift := srv.FailFork(t)
	// The AOF is due for a rewrite once min-size is below its size: cron starts one.
	if err := c.ConfigSet(context.Background(), "auto-aof-rewrite-min-size", "1kb").Err(); err != nil {
		t.Fatalf("CONFIG SET: %v", err)
	}
	time.Sleep(window)
	res := stormResult{window: window, incrFiles: countIncr(t, srv) - before}
	lift()
	lifted := time.Now()
	deadline := lifted.Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		info := srv.Info(t)
		if info["aof_last_bgrewrite_status"] == "ok" && info["aof_rewrite_in_progress"] == "0" {
			res.toRewrite = time.Since(lifted)
			res.rewriteFolded = countIncr(t, srv) <= 1
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res.toRewrite == 0 {
		t.Errorf("no successful rewrite within 3 min of the fault's end")
	}
	log, err := os.ReadFile(srv.LogFile)
	if err != nil {
		t.Fatalf("read the log: %v", err)
	}
	res.forkAttempts = strings.Count(string(log[min(logBefore, int64(len(log))):]), "Can't rewrite append only file in background: fork")
	return res
}

func countIncr(t *benchT, srv *testredis.Server) int {
	m, err := filepath.Glob(filepath.Join(srv.DataDir, "appendonlydir", "*.incr.aof"))
	if err != nil {
		t.Fatalf("glob: %v", err)
	}
	return len(m)
}

func logSize(t *benchT, srv *testredis.Server) int64 {
	st, err := os.Stat(srv.LogFile)
	if err != nil {
		t.Fatalf("stat the log: %v", err)
	}
	return st.Size()
}

// stormSection is figure 7.
func (r *report) stormSection(p func(string, ...any)) {
	a, okA := r.storm[replAlone]
	g, okG := r.storm[replGuardian]
	if !okA || !okG {
		return
	}
	p("## 7. AOF rewrite storm: a %s fork failure with an automatic rewrite due, Redis alone vs with the guardian\n\n", fmtDur(a.window))
	p("A rewrite whose fork fails is not counted in `aof_rewrites_consecutive_failures`, so Redis's own limiter never engages: every cron tick starts another attempt, and each opens an INCR file the next start must load. With the guardian (shipped defaults; rewrite_retry retries on a fork seen to succeed, else after a backoff of 90 s to 15 min) the automatic attempts stop at the first failure.\n\n")
	p("| | %s | %s |\n|---|---|---|\n", replAlone, replGuardian)
	p("| INCR files added during the fault | %d | %d |\n", a.incrFiles, g.incrFiles)
	p("| rewrite fork attempts (log lines) | %d | %d |\n", a.forkAttempts, g.forkAttempts)
	p("| from the fault's end to a successful rewrite | %s | %s |\n", fmtDur(a.toRewrite), fmtDur(g.toRewrite))
	p("| INCR files folded back into one afterwards | %v | %v |\n\n", a.rewriteFolded, g.rewriteFolded)
	p("The guardian's price is the last row but one: with nothing forking meanwhile, its retry waits for the backoff, while Redis alone rewrites at its next cron tick once the fault is gone. Its gain is the first two rows: each avoided attempt is an INCR file fewer for the next start to load and a fork fewer.\n\n")
}
