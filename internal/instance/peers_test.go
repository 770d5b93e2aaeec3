package instance

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// TestPeers: each instance sees the others' last local reading, never its own;
// a remote Redis, an unreadable one and a stopped instance are not counted.
func TestPeers(t *testing.T) {
	t.Parallel()
	local := func(maxmem, used int64, limit string) monitor.Snapshot {
		s := monitor.Snapshot{Host: monitor.HostReading{Available: true}}
		s.Redis.Info.MaxMemory, s.Redis.Info.UsedMemory = maxmem, used
		if limit != "" {
			s.Host.Cgroup = monitor.CgroupReading{Known: true, MemoryMax: 1 << 30, LimitPath: limit}
		}
		return s
	}
	p := NewPeers()
	p.publish("a", local(100, 10, ""))
	p.publish("b", local(200, 20, "/redis.slice"))
	p.publish("remote", monitor.Snapshot{Host: monitor.HostReading{Reason: "not local"}})
	down := local(300, 30, "")
	p.publish("down", down)
	down.Redis.Err = errors.New("connection refused")
	p.publish("down", down) // its last reading no longer holds
	want := []monitor.PeerMemory{{Name: "b", MaxMemory: 200, UsedMemory: 20, CgroupLimit: "/redis.slice"}}
	if diff := cmp.Diff(want, p.others("a")); diff != "" {
		t.Errorf("a sees (-want +got):\n%s", diff)
	}
	p.forget("b")
	if got := p.others("a"); len(got) != 0 {
		t.Errorf("a sees %+v after b stopped", got)
	}
	var none *Peers // an instance built without a board sees nobody
	none.publish("a", local(1, 1, ""))
	if got := none.others("a"); got != nil {
		t.Errorf("nil board: %+v", got)
	}
}
