package policy

import (
	"testing"
	"time"
)

// holdPercent puts a hold of auto-aof-rewrite-percentage 0 by remedy in the input.
func holdPercent(in *Input, remedy string) {
	in.Held = map[string]Held{SettingRewritePercent: {Setting: SettingRewritePercent, Original: "100", Value: "0",
		Remedy: remedy, Reason: IDAOFRewriteStorm, Since: now.Add(-time.Minute)}}
	in.Snapshot.Redis.Config[SettingRewritePercent] = "0"
}

func storm(in *Input) { in.Snapshot.Redis.Info.AOFLastBgrewriteStatus = "err" }

func TestDecideRewriteRetry(t *testing.T) {
	t.Parallel()
	set := func(reason string) []Decision {
		// Only the storm adds an INCR file per cron tick until the hold is applied;
		// a rewrite that would not fit has not started yet.
		return []Decision{{Remedy: RemedyRewriteRetry, Action: ActSet, Setting: SettingRewritePercent, Value: "0", Reason: reason,
			Urgent: reason == IDAOFRewriteStorm}}
	}
	undo := []Decision{{Remedy: RemedyRewriteRetry, Action: ActUndo, Setting: SettingRewritePercent, Value: "100", Reason: IDAOFRewriteFailed}}
	rewrite := []Decision{{Remedy: RemedyRewriteRetry, Action: ActBgrewriteaof, Reason: IDAOFRewriteFailed}}
	backoffPassed := func(in *Input, st *State) {
		st.remedies = map[string]any{RemedyRewriteRetry: rewriteRetryState{FailedAt: now.Add(-2 * time.Minute), NextRetry: now.Add(-time.Second), PrevForks: in.Snapshot.Redis.Info.TotalForks}}
	}
	runDecideCases(t, RemedyRewriteRetry, []decideCase{
		{name: "healthy"},
		{name: "storm", setup: func(in *Input, _ *State) { storm(in) }, want: set(IDAOFRewriteStorm)},
		{name: "child failures are Redis's own limiter's", setup: func(in *Input, _ *State) {
			storm(in)
			in.Snapshot.Redis.Info.AOFRewritesConsecutiveFailures = 2
		}},
		{name: "storm with AOF off", setup: func(in *Input, _ *State) {
			storm(in)
			in.Snapshot.Redis.Info.AOFEnabled = false
		}},
		{name: "storm while the percentage is 0 already", setup: func(in *Input, _ *State) {
			storm(in)
			in.Snapshot.Redis.Config[SettingRewritePercent] = "0"
		}},
		{name: "storm while the deferral holds it", setup: func(in *Input, _ *State) {
			storm(in)
			holdPercent(in, RemedyRewriteDeferral)
		}},
		{name: "storm, yielded to an operator", setup: func(in *Input, st *State) {
			storm(in)
			st.Shared.Yielded = map[string]time.Time{Yield{Remedy: RemedyRewriteRetry, Setting: SettingRewritePercent}.key(): now.Add(-time.Minute)}
		}},
		{name: "a rewrite will not fit", setup: func(in *Input, _ *State) { in.Snapshot.Host.AOFDir.Free = uint64(10 * mib) },
			want: set(IDAOFRewriteWontFit)},
		{name: "will not fit, predictive off", setup: func(in *Input, _ *State) {
			in.Snapshot.Host.AOFDir.Free = uint64(10 * mib)
			ConfigOf[*RewriteRetryConfig](in.Remedies).Predictive = false
		}},
		{name: "held, still failing, backoff not passed", setup: func(in *Input, _ *State) {
			storm(in)
			holdPercent(in, RemedyRewriteRetry)
		}},
		{name: "held, still failing, backoff passed", setup: func(in *Input, st *State) {
			storm(in)
			holdPercent(in, RemedyRewriteRetry)
			backoffPassed(in, st)
		}, want: rewrite},
		{name: "held, a fork succeeded elsewhere", setup: func(in *Input, st *State) {
			storm(in)
			holdPercent(in, RemedyRewriteRetry)
			st.remedies = map[string]any{RemedyRewriteRetry: rewriteRetryState{FailedAt: now.Add(-time.Second), NextRetry: now.Add(time.Hour), PrevForks: in.Snapshot.Redis.Info.TotalForks - 1}}
		}, want: rewrite},
		{name: "held, backoff passed, but a child runs", setup: func(in *Input, st *State) {
			storm(in)
			holdPercent(in, RemedyRewriteRetry)
			backoffPassed(in, st)
			in.Snapshot.Redis.Info.RDBBgsaveInProgress = true
		}},
		{name: "held, backoff passed, but the base would not fit", setup: func(in *Input, st *State) {
			storm(in)
			holdPercent(in, RemedyRewriteRetry)
			backoffPassed(in, st)
			in.Snapshot.Host.AOFDir.Free = uint64(10 * mib)
		}},
		{name: "held, a rewrite succeeded", setup: func(in *Input, _ *State) { holdPercent(in, RemedyRewriteRetry) }, want: undo},
		{name: "held, succeeded but no room to spare", setup: func(in *Input, _ *State) {
			holdPercent(in, RemedyRewriteRetry)
			in.Snapshot.Host.AOFDir.Free = uint64(61 * mib)
		}},
		{name: "held while stopping, still failing: kept", setup: func(in *Input, _ *State) {
			storm(in)
			holdPercent(in, RemedyRewriteRetry)
			in.Stopping = true
		}},
		{name: "held while stopping, healthy: given back", setup: func(in *Input, _ *State) {
			holdPercent(in, RemedyRewriteRetry)
			in.Stopping = true
		}, want: undo},
		{name: "held, a sign cleared but the last retry was just now", setup: func(in *Input, st *State) {
			storm(in)
			holdPercent(in, RemedyRewriteRetry)
			st.remedies = map[string]any{RemedyRewriteRetry: rewriteRetryState{FailedAt: now.Add(-time.Minute), NextRetry: now.Add(time.Hour),
				LastTry: now.Add(-time.Second), PrevForks: in.Snapshot.Redis.Info.TotalForks - 1}}
		}},
		{name: "limiter engaged, nothing cleared: Redis's own backoff", setup: func(in *Input, _ *State) { killedChildren(in) }},
		{name: "limiter engaged, a save succeeded", setup: func(in *Input, st *State) {
			killedChildren(in)
			st.remedies = map[string]any{RemedyRewriteRetry: rewriteRetryState{PrevSave: in.Snapshot.Redis.Info.RDBLastSaveTime - 1,
				PrevForks: in.Snapshot.Redis.Info.TotalForks}}
		}, want: rewrite},
		{name: "limiter engaged, a fork rose: the killed child was forked too", setup: func(in *Input, st *State) {
			killedChildren(in)
			st.remedies = map[string]any{RemedyRewriteRetry: rewriteRetryState{PrevSave: in.Snapshot.Redis.Info.RDBLastSaveTime,
				PrevForks: in.Snapshot.Redis.Info.TotalForks - 1}}
		}},
		{name: "limiter engaged, a save succeeded, but the save failed since", setup: func(in *Input, st *State) {
			killedChildren(in)
			in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "err"
			st.remedies = map[string]any{RemedyRewriteRetry: rewriteRetryState{PrevSave: in.Snapshot.Redis.Info.RDBLastSaveTime - 1}}
		}},
		{name: "limiter engaged, a save succeeded 10 s after the last retry", setup: func(in *Input, st *State) {
			killedChildren(in)
			st.remedies = map[string]any{RemedyRewriteRetry: rewriteRetryState{PrevSave: in.Snapshot.Redis.Info.RDBLastSaveTime - 1,
				LastTry: now.Add(-10 * time.Second)}}
		}},
	})
}

// killedChildren is Redis after three rewrite children were killed: its limiter
// delays the next automatic attempt.
func killedChildren(in *Input) {
	storm(in)
	in.Snapshot.Redis.Info.AOFRewritesConsecutiveFailures = redisRewriteLimit
	in.Snapshot.Redis.Info.RDBLastBgsaveStatus = "ok"
	in.Snapshot.Redis.Info.RDBLastSaveTime = now.Add(-time.Second).Unix()
}
