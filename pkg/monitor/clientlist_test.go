package monitor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestParseClientListCaptures: CLIENT LIST of every supported server, captured
// with a MONITOR that does not read under write load, a named client and the
// connection that asked (see testdata/README.md), reads into the same clients.
func TestParseClientListCaptures(t *testing.T) {
	t.Parallel()
	for _, b := range captureBuilds {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			cs := ParseClientList(infoFixture(t, "clientlist-"+b.name+".txt"))
			if len(cs) != 3 {
				t.Fatalf("%d clients, want 3: %+v", len(cs), cs)
			}
			mon, named, self := cs[0], cs[1], cs[2]
			if !mon.Monitor() || mon.Cmd != "monitor" || mon.Omem < 5<<20 || mon.TotMem < mon.Omem || mon.Name != "" {
				t.Errorf("the MONITOR: %+v; want flags O, cmd monitor, omem above 5 MiB", mon)
			}
			if named.Name != "app-writer" || named.Cmd != "client|setname" || named.Omem != 0 || named.Monitor() {
				t.Errorf("the named client: %+v", named)
			}
			if self.Cmd != "client|list" || self.ID <= named.ID || self.Addr == "" {
				t.Errorf("the asking connection: %+v", self)
			}
			top := TopClients(cs, self.ID, 5)
			if len(top) != 1 || top[0].ID != mon.ID {
				t.Errorf("TopClients: %+v, want the MONITOR alone (the others' output buffers are empty)", top)
			}
		})
	}
}

func TestParseClientList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want []Client
	}{
		{name: "empty", in: "", want: nil},
		{
			name: "6.0 line, CRLF, unknown fields",
			in: "id=7 addr=10.0.0.1:5000 fd=8 name=worker age=3600 idle=0 flags=P db=0 sub=1 psub=0 multi=-1 qbuf=0 qbuf-free=0 obl=0 oll=12 omem=4096 events=rw cmd=subscribe user=default new-field=x\r\n" +
				"id=9 addr=10.0.0.2:6000 fd=9 name= age=1 idle=1 flags=S db=0 omem=1048576 tot-mem=1100000 cmd=psync\r\n",
			want: []Client{
				{ID: 7, Addr: "10.0.0.1:5000", Name: "worker", Cmd: "subscribe", Flags: "P", Age: time.Hour, Omem: 4096},
				{ID: 9, Addr: "10.0.0.2:6000", Cmd: "psync", Flags: "S", Age: time.Second, Omem: 1 << 20, TotMem: 1100000},
			},
		},
		{
			name: "a space in a unix socket path stays in the address",
			in:   "id=3 addr=/run/my redis/r.sock:0 laddr=/run/my redis/r.sock:0 fd=7 name=mon flags=O omem=99 cmd=monitor\n",
			want: []Client{{ID: 3, Addr: "/run/my redis/r.sock:0", Name: "mon", Cmd: "monitor", Flags: "O", Omem: 99}},
		},
		{
			name: "lines without an id and garbage are skipped, bad numbers read 0",
			in:   "hello world\nid=x addr=a\naddr=b omem=5\nid=4 omem=lots age=-\n",
			want: []Client{{ID: 4}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, ParseClientList(tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTopClients(t *testing.T) {
	t.Parallel()
	cs := []Client{
		{ID: 1, Omem: 10}, {ID: 2, Omem: 0, TotMem: 1 << 30}, {ID: 3, Omem: 50}, {ID: 4, Omem: 10, TotMem: 20},
		{ID: 5, Omem: 30}, {ID: 6, Omem: 40}, {ID: 7, Omem: 99}, {ID: 8, Omem: 1},
	}
	var ids []int64
	for _, c := range TopClients(cs, 7, 5) {
		ids = append(ids, c.ID)
	}
	if diff := cmp.Diff([]int64{3, 6, 5, 4, 1}, ids); diff != "" {
		t.Errorf("top 5 without self (7) and empty buffers (2) (-want +got):\n%s", diff)
	}
	if got := TopClients(nil, -1, 5); len(got) != 0 {
		t.Errorf("no clients: %+v", got)
	}
}
