package instance

import (
	"slices"
	"strings"
	"sync"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// Peers is where the instances of one guardian process tell each other the
// memory of their Redis, when it runs on this host: oom_relief must not raise
// one instance's maxmemory into room another instance's maxmemory already
// claims. Each loop publishes after its own snapshot and reads the others'
// last readings: no instance reads another's Redis, and it costs no Redis
// round trip. Instances of other guardian processes (the @ units) are not
// seen; the room the host's MemAvailable shows still counts what they use now.
type Peers struct {
	mu   sync.Mutex
	last map[string]monitor.PeerMemory
}

// NewPeers returns an empty board, one per guardian process.
func NewPeers() *Peers { return &Peers{last: map[string]monitor.PeerMemory{}} }

// publish records an instance's reading of its Redis: only a local Redis
// (host readings available) whose INFO was read.
func (p *Peers) publish(name string, s monitor.Snapshot) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.Redis.Err != nil || !s.Host.Available {
		delete(p.last, name)
		return
	}
	in := s.Redis.Info
	m := monitor.PeerMemory{Name: name, MaxMemory: in.MaxMemory, UsedMemory: in.UsedMemory}
	if cg := s.Host.Cgroup; cg.Known && cg.MemoryMax > 0 {
		m.CgroupLimit = cg.LimitPath
	}
	p.last[name] = m
}

// others returns every instance's last reading but name's, by name.
func (p *Peers) others(name string) []monitor.PeerMemory {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []monitor.PeerMemory
	for n, m := range p.last {
		if n != name {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b monitor.PeerMemory) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// forget drops an instance that stopped (removed or replaced by a reload).
func (p *Peers) forget(name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.last, name)
}
