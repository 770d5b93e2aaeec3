package monitor

import (
	"context"
	"fmt"
	"time"
)

// When client buffers are worth a CLIENT LIST. Below ClientBuffersMinBytes no
// client is worth naming: ten thousand idle connections hold about 20 KiB each,
// and that is not a runaway. Below ClientBuffersMinShare of used_memory the
// clients are not what fills memory, so naming them would point away from the
// cause. A MONITOR or subscriber that does not read grows by tens of MB a second
// under write load, far past both.
const (
	ClientBuffersMinBytes = 32 << 20
	ClientBuffersMinShare = 0.25
)

// ClientListEvery is the least time between two CLIENT LISTs of one instance:
// CLIENT LIST walks every connection on Redis's main thread, so it never runs per
// tick. Client buffers that grew by another ClientBuffersMinBytes since the last
// listing (a second runaway, or the listed one far bigger) are listed again
// sooner, but not within ClientListSoonest. TopClientsN is how many clients a
// reading keeps.
const (
	ClientListEvery   = time.Minute
	ClientListSoonest = 5 * time.Second
	TopClientsN       = 5
)

// ClientBuffersLarge reports whether the normal clients' buffers (MONITOR and
// pub/sub included) hold enough memory, and a large enough share of it, that the
// clients holding them should be named.
func ClientBuffersLarge(in Info) bool {
	return in.HasMemoryBreakdown && in.MemClientsNormal > ClientBuffersMinBytes &&
		float64(in.MemClientsNormal) > ClientBuffersMinShare*float64(in.UsedMemory)
}

// clientsCache is the last CLIENT LIST of a RedisSource.
type clientsCache struct {
	list  []Client
	at    time.Time
	err   error
	runID string
	// buffers is mem_clients_normal when it was listed.
	buffers int64
}

// clients returns this reading's clients: a new CLIENT LIST when client buffers
// are large on a read of the memory section (mem) and the last one is
// ClientListEvery old, or the buffers grew by ClientBuffersMinBytes since it
// and it is ClientListSoonest old; else the last one while the buffers stay
// large. A read that finds them small, or a restarted Redis, forgets it.
func (r *RedisSource) clients(ctx context.Context, now time.Time, in Info, mem bool) ([]Client, time.Time, error) {
	large := ClientBuffersLarge(in)
	r.mu.Lock()
	c := r.clientList
	if in.RunID != c.runID || (mem && !large) {
		c = clientsCache{runID: in.RunID}
	}
	age := now.Sub(c.at)
	grown := in.MemClientsNormal >= c.buffers+ClientBuffersMinBytes && age >= ClientListSoonest
	due := mem && large && (c.at.IsZero() || age >= ClientListEvery || grown || now.Before(c.at))
	r.clientList = c
	r.mu.Unlock()
	if !due {
		return c.list, c.at, c.err
	}
	list, err := r.listClients(ctx)
	c = clientsCache{list: list, at: now, err: err, runID: in.RunID, buffers: in.MemClientsNormal}
	r.mu.Lock()
	r.clientList = c
	r.mu.Unlock()
	return c.list, c.at, c.err
}

// listClients runs CLIENT ID and CLIENT LIST in one pipeline, so on one
// connection: the id is the listing connection's own, which is left out. The
// guardian sets no client name (see NewRedisClient: no CLIENT SETNAME or SETINFO
// on connect), so the id is what tells its connection apart. Its other pooled
// connection reads every reply, so its output buffer is empty and TopClients
// leaves it out too.
func (r *RedisSource) listClients(ctx context.Context) ([]Client, error) {
	pipe := r.client.Pipeline()
	idCmd := pipe.Do(ctx, "CLIENT", "ID")
	listCmd := pipe.Do(ctx, "CLIENT", "LIST")
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("CLIENT LIST: %w", BoundError(err))
	}
	self, err := idCmd.Int64()
	if err != nil {
		return nil, fmt.Errorf("CLIENT ID: %w", BoundError(err))
	}
	raw, err := listCmd.Text()
	if err != nil {
		return nil, fmt.Errorf("CLIENT LIST: %w", BoundError(err))
	}
	return TopClients(ParseClientList(raw), self, TopClientsN), nil
}
