package monitor

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Client is one connection of CLIENT LIST: the fields that name a client and say
// how much memory its buffers hold.
type Client struct {
	ID   int64  `json:"id"`
	Addr string `json:"addr"`
	Name string `json:"name,omitempty"`
	// Cmd is the last command the client ran ("monitor", "subscribe", "client|list").
	Cmd string `json:"cmd"`
	// Flags are CLIENT LIST's letters: O a MONITOR, S a replica, M the master,
	// P a pub/sub subscriber, N none.
	Flags string        `json:"flags"`
	Age   time.Duration `json:"age"`
	// Omem is the output buffer Redis holds for the client: replies it has not
	// read yet. It counts toward maxmemory for every class but replicas.
	Omem int64 `json:"omem"`
	// Qbuf is the query buffer (commands sent and not yet run), TotMem all the
	// memory the client uses (6.0+; 0 when not reported).
	Qbuf   int64 `json:"qbuf"`
	TotMem int64 `json:"tot_mem"`
}

// Monitor reports whether the client is a MONITOR (flag O).
func (c Client) Monitor() bool { return strings.Contains(c.Flags, "O") }

// ParseClientList parses the reply of CLIENT LIST, one client a line of
// space-separated key=value fields. It is pure and tolerant: unknown fields are
// ignored (each version adds some), a malformed number reads as 0, a line without
// a valid id= is skipped. A space inside a value (a unix socket path may hold one; names
// cannot) is kept: a word without "=" continues the value before it.
func ParseClientList(s string) []Client {
	var out []Client
	for len(s) > 0 {
		var line string
		line, s, _ = strings.Cut(s, "\n")
		line = strings.TrimRight(line, "\r")
		if c, ok := parseClientLine(line); ok {
			out = append(out, c)
		}
	}
	return out
}

func parseClientLine(line string) (Client, bool) {
	var c Client
	hasID := false
	var key, val string
	flush := func() {
		switch key {
		case "id":
			c.ID, hasID = atoi(val), true
		case "addr":
			c.Addr = val
		case "name":
			c.Name = val
		case "cmd":
			c.Cmd = val
		case "flags":
			c.Flags = val
		case "age":
			c.Age = time.Duration(atoi(val)) * time.Second
		case "omem":
			c.Omem = atoi(val)
		case "qbuf":
			c.Qbuf = atoi(val)
		case "tot-mem":
			c.TotMem = atoi(val)
		}
	}
	for _, w := range strings.Split(line, " ") {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			if key != "" {
				val += " " + w
			}
			continue
		}
		flush()
		key, val = k, v
	}
	flush()
	return c, hasID && c.ID > 0
}

// TopClients returns the n clients with the largest output buffers, largest
// first (ties: the larger total memory, then the lower id), leaving out the
// connection self (the one that asked, -1 for none) and every client whose output
// buffer is empty: they are not what fills memory. Replicas are kept: their
// buffers are what a full sync costs.
func TopClients(cs []Client, self int64, n int) []Client {
	var out []Client
	for _, c := range cs {
		if c.ID == self || c.Omem <= 0 {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Client) int {
		if a.Omem != b.Omem {
			return cmp.Compare(b.Omem, a.Omem)
		}
		if a.TotMem != b.TotMem {
			return cmp.Compare(b.TotMem, a.TotMem)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
