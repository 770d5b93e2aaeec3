package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// soak is one run: the servers with their writers, the guardian, the observer and
// what happened.
type soak struct {
	opts    options
	run     *scope
	names   []string
	srvs    []*testredis.Server
	clients []*redis.Client
	writers []*writer
	g       *guardian
	obs     *observer
	start   time.Time

	mu         sync.Mutex
	faults     []*faultRec
	violations []violation
	injectErrs []string
	rss        []rssSample
}

// faultRec is one fault as it happened: when it was injected and cleared.
type faultRec struct {
	step       step
	start, end time.Time
	note       string // what an operator_set did
	revert     bool   // an operator_set that ended a hold
	failed     bool   // the injection did not happen
}

// violation is a broken invariant.
type violation struct {
	at   time.Time
	inst string
	what string
}

type rssSample struct {
	at  time.Time
	kib int64
}

func (k *soak) violation(inst, what string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.violations = append(k.violations, violation{at: time.Now(), inst: inst, what: what})
	fmt.Fprintf(os.Stderr, "soak: VIOLATION %s %s: %s\n", time.Now().Format("15:04:05.000"), inst, what)
}

// setUp starts the servers, their writers, the guardian and the observer.
func (k *soak) setUp(ctx context.Context, builds []testredis.Build) error {
	srvs, err := startServers(k.run, builds)
	if err != nil {
		return err
	}
	k.srvs = srvs
	var sockets []string
	k.obs = &observer{report: k.violation}
	for i, s := range srvs {
		k.names = append(k.names, builds[i].Name)
		sockets = append(sockets, s.Socket)
		c := client(s)
		k.clients = append(k.clients, c)
		base, err := configGet(ctx, c)
		if err != nil {
			return fmt.Errorf("%s: %w", builds[i].Name, err)
		}
		k.obs.inst = append(k.obs.inst, &instObs{name: builds[i].Name, c: c, base: base, expected: clone(base),
			opVal: map[string]string{}, miss: map[string]time.Time{}, open: map[string]bool{}})
		k.writers = append(k.writers, newWriter(i, s.Socket))
	}
	dir := k.run.TempDir()
	bin := k.opts.guardian
	if bin == "" {
		if bin, err = buildGuardian(dir); err != nil {
			return err
		}
	}
	config, stateDir, err := writeGuardianConfig(dir, k.names, sockets)
	if err != nil {
		return err
	}
	k.obs.stateDir = stateDir
	k.g = &guardian{bin: bin, config: config, stateDir: stateDir, dir: dir,
		onCrash: func(msg string) { k.violation("guardian", msg) }}
	return k.g.start()
}

// execute runs the schedule: each fault in a goroutine of its own, injected at its
// time and cleared after its duration. It returns when every fault is cleared.
func (k *soak) execute(ctx context.Context, steps []step) {
	var wg sync.WaitGroup
	for _, st := range steps {
		rec := &faultRec{step: st}
		k.mu.Lock()
		k.faults = append(k.faults, rec)
		k.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleep(ctx, time.Until(k.start.Add(st.At))) {
				return // interrupted: the faults not yet injected are not
			}
			k.runFault(ctx, st, rec)
		}()
	}
	wg.Wait()
}

func (k *soak) runFault(ctx context.Context, st step, rec *faultRec) {
	who := "guardian"
	if st.Inst >= 0 {
		who = k.names[st.Inst]
	}
	sc := newScope(fmt.Sprintf("%s@%s", st.Kind, who), k.opts.verbose)
	rec.start = time.Now()
	var clear func()
	err := try(sc, func() { clear = k.inject(sc, st, rec) })
	if err == nil {
		sleep(ctx, st.Dur) // interrupted: cleared at once
		if clear != nil {
			err = try(sc, clear)
		}
	}
	if !sc.Close() && err == nil {
		err = fmt.Errorf("%s: clearing failed (see errors above)", sc.Name())
	}
	k.mu.Lock()
	rec.end = time.Now()
	if err != nil {
		rec.failed = rec.end.Sub(rec.start) < st.Dur
		k.injectErrs = append(k.injectErrs, fmt.Sprintf("%s %s", rec.start.Format("15:04:05.000"), err))
	}
	k.mu.Unlock()
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: fault %s: %v\n", sc.Name(), err)
	} else if k.opts.verbose {
		fmt.Fprintf(os.Stderr, "soak: %s %s cleared after %s %s\n", rec.start.Format("15:04:05"), sc.Name(), rec.end.Sub(rec.start).Round(time.Millisecond), rec.note)
	}
}

// sampleRSS records the guardian's VmRSS every interval until ctx ends.
func (k *soak) sampleRSS(ctx context.Context, every time.Duration, limitKiB int64) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	over := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pid := k.g.pid()
		if pid == 0 {
			continue
		}
		kib, err := rssKiB(pid)
		if err != nil {
			continue
		}
		k.mu.Lock()
		k.rss = append(k.rss, rssSample{at: time.Now(), kib: kib})
		k.mu.Unlock()
		if kib > limitKiB && !over {
			over = true
			k.violation("guardian", fmt.Sprintf("RSS %d KiB above the bound of %d KiB", kib, limitKiB))
		}
	}
}

// settle waits up to d for every instance to have nothing left changed but
// oom_shield's standing hold, then stops the guardian cleanly and checks that
// nothing at all is left: settings, ledgers, held values in the config files.
func (k *soak) settle(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for i := range k.srvs {
		for {
			left, err := k.obs.leftover(ctx, i, true)
			if err == nil && len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				k.violation(k.names[i], fmt.Sprintf("%s after the faults stopped: %v (err %v)", d, left, err))
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if err := k.g.signal(syscall.SIGTERM, 30*time.Second); err != nil {
		k.violation("guardian", err.Error())
	}
	for i, s := range k.srvs {
		left, err := k.obs.leftover(ctx, i, false)
		if err != nil || len(left) > 0 {
			k.violation(k.names[i], fmt.Sprintf("after the guardian's clean stop: %v (err %v)", left, err))
		}
		lines, err := heldInFile(s.ConfigFile)
		if err != nil || len(lines) > 0 {
			k.violation(k.names[i], fmt.Sprintf("%s holds the guardian's values after its stop: %q (err %v)", filepath.Base(s.ConfigFile), lines, err))
		}
	}
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
