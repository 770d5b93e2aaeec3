package policy

import (
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

func TestDecideFsyncRelief(t *testing.T) {
	t.Parallel()
	set := []Decision{{Remedy: RemedyFsyncRelief, Action: ActSet, Setting: SettingNoFsyncOnRewrite, Value: "yes", Reason: IDAOFFsyncSlow}}
	undo := []Decision{{Remedy: RemedyFsyncRelief, Action: ActUndo, Setting: SettingNoFsyncOnRewrite, Value: "no", Reason: IDAOFFsyncSlow}}
	enable := func(in *Input) { ConfigOf[*FsyncReliefConfig](in.Remedies).Enabled = true }
	slowLog := func(in *Input, ago time.Duration) {
		in.Snapshot.Log.Last = map[monitor.LogKind]monitor.LogEvent{monitor.LogAOFFsyncSlow: {Kind: monitor.LogAOFFsyncSlow, Time: now.Add(-ago)}}
	}
	rewriting := func(in *Input) { in.Snapshot.Redis.Info.AOFRewriteInProgress = true }
	hold := func(in *Input) {
		in.Held = map[string]Held{SettingNoFsyncOnRewrite: {Setting: SettingNoFsyncOnRewrite, Original: "no", Value: "yes", Remedy: RemedyFsyncRelief}}
		in.Snapshot.Redis.Config[SettingNoFsyncOnRewrite] = "yes"
	}
	base := func(in *Input) { in.Snapshot.Redis.Config[SettingNoFsyncOnRewrite] = "no" }
	runDecideCases(t, RemedyFsyncRelief, []decideCase{
		{name: "off by default", setup: func(in *Input, _ *State) { base(in); slowLog(in, time.Second); rewriting(in) }},
		{name: "slow disk during a rewrite", setup: func(in *Input, _ *State) { base(in); enable(in); slowLog(in, time.Second); rewriting(in) }, want: set},
		{name: "slow disk during a save", setup: func(in *Input, _ *State) {
			base(in)
			enable(in)
			slowLog(in, time.Second)
			in.Snapshot.Redis.Info.RDBBgsaveInProgress = true
		}, want: set},
		{name: "slow disk, no child", setup: func(in *Input, _ *State) { base(in); enable(in); slowLog(in, time.Second) }},
		{name: "a rewrite, disk not slow lately", setup: func(in *Input, _ *State) { base(in); enable(in); slowLog(in, time.Hour); rewriting(in) }},
		{name: "appendfsync no", setup: func(in *Input, _ *State) {
			base(in)
			enable(in)
			slowLog(in, time.Second)
			rewriting(in)
			in.Snapshot.Redis.Config["appendfsync"] = "no"
		}},
		{name: "held while the rewrite runs", setup: func(in *Input, _ *State) { enable(in); hold(in); rewriting(in) }},
		{name: "held, the rewrite ended", setup: func(in *Input, _ *State) { enable(in); hold(in) }, want: undo},
		{name: "held, stopping", setup: func(in *Input, _ *State) { enable(in); hold(in); rewriting(in); in.Stopping = true }, want: undo},
	})
}
