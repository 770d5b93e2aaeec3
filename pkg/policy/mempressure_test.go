package policy

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis-guardian/redis-guardian/pkg/monitor"
)

// withBreakdown gives healthy()'s Redis the INFO memory breakdown of 7.0+:
// used_memory split into dataset, client buffers and the rest of the overhead.
func withBreakdown(s *monitor.Snapshot, used, dataset, clients int64) {
	in := &s.Redis.Info
	in.HasMemoryBreakdown = true
	in.UsedMemory = used
	in.UsedMemoryDataset = dataset
	in.UsedMemoryOverhead = used - dataset
	in.UsedMemoryStartup = mib
	in.MemClientsNormal = clients
	in.UsedMemoryScripts = 200
}

// runawayMonitor is issue 24's measurement, at 200 MB: a MONITOR that does not
// read holds 150 MB of output buffer, the dataset is 40 MB, writes are rejected.
func runawayMonitor(s *monitor.Snapshot) {
	s.Redis.Info.MaxMemory, s.Redis.Info.MaxMemoryPolicy = 200*mib, "noeviction"
	withBreakdown(s, 196*mib, 40*mib, 150*mib)
	s.Redis.Config["client-output-buffer-limit"] = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
	s.Redis.Clients = []monitor.Client{
		{ID: 3, Addr: "10.1.2.3:42768", Cmd: "monitor", Flags: "O", Omem: 149 * mib, TotMem: 149 * mib, Age: 25 * time.Second},
		{ID: 17, Addr: "10.1.2.4:5000", Name: "reports", Cmd: "lrange", Flags: "N", Omem: mib},
	}
	s.Redis.ClientsTime = now.Add(-12 * time.Second)
}

func TestMemoryPressureCause(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		snap func(*monitor.Snapshot)
		hist func(*History, monitor.Snapshot)
		want []idSev
		// id is the finding whose texts are checked.
		id                 string
		cause, fix, notFix []string
		summary            string
	}{
		{
			name: "a MONITOR that does not read: client buffers, named, and their fix",
			snap: runawayMonitor,
			want: []idSev{warn(IDMaxmemoryNearLimit)},
			id:   IDMaxmemoryNearLimit,
			cause: []string{"used_memory 196.0 MiB of maxmemory 200.0 MiB, policy noeviction",
				"client buffers (mem_clients_normal) 150.0 MiB (77%), dataset (used_memory_dataset) 40.0 MiB (20%)",
				"client-output-buffer-limit normal 0 0 0: no limit, the default",
				"biggest output buffers (CLIENT LIST 12s ago): id=3 addr=10.1.2.3:42768 cmd=monitor flags=O omem=149.0 MiB age=25s, id=17 addr=10.1.2.4:5000 name=reports cmd=lrange"},
			fix:    []string{"CLIENT KILL ID 3, CLIENT KILL ID 17", `CONFIG SET client-output-buffer-limit "normal 50mb 12mb 60"`, "maxmemory-clients"},
			notFix: []string{"raise maxmemory if", "reduce the dataset"},
		},
		{
			name: "the same MONITOR rejecting writes: oom_rejections says the same",
			snap: func(s *monitor.Snapshot) {
				runawayMonitor(s)
				withBreakdown(s, 201*mib, 40*mib, 155*mib)
				s.Redis.Info.ErrorstatOOM, s.Redis.Info.UptimeSeconds = 8402, 30
			},
			hist: func(h *History, s monitor.Snapshot) {
				prev := s
				prev.Time = now.Add(-25 * time.Second)
				prev.Redis.Info.ErrorstatOOM = 0
				h.Prev = &prev
			},
			want:    []idSev{crit(IDMaxmemoryNearLimit), warn(IDOOMRejections)},
			id:      IDOOMRejections,
			summary: "Redis rejected 8402 commands with OOM in the last 25s",
			cause:   []string{"errorstat_OOM rose by 8402", "client buffers (mem_clients_normal) 155.0 MiB", "id=3 addr=10.1.2.3:42768 cmd=monitor"},
			fix:     []string{"CLIENT KILL ID 3"},
			notFix:  []string{"raise maxmemory,", "reduce the dataset"},
		},
		{
			name: "a subscriber under allkeys-lru: its class, and the keys evicted for it",
			snap: func(s *monitor.Snapshot) {
				runawayMonitor(s)
				s.Redis.Info.MaxMemoryPolicy = "allkeys-lru"
				s.Redis.Clients = []monitor.Client{{ID: 9, Addr: "a:1", Cmd: "subscribe", Flags: "P", Omem: 140 * mib}}
			},
			want:  []idSev{warn(IDMaxmemoryNearLimit)},
			id:    IDMaxmemoryNearLimit,
			cause: []string{"under allkeys-lru Redis evicts keys to make room for them", "id=9 addr=a:1 cmd=subscribe flags=P"},
			fix:   []string{`client-output-buffer-limit "pubsub 50mb 12mb 60"`, "CLIENT KILL ID 9"},
		},
		{
			name: "client buffers that could not be listed: the reason and the ACL",
			snap: func(s *monitor.Snapshot) {
				runawayMonitor(s)
				s.Redis.Clients, s.Redis.ClientsErr = nil, errors.New("CLIENT LIST: NOPERM")
			},
			want:  []idSev{warn(IDMaxmemoryNearLimit)},
			id:    IDMaxmemoryNearLimit,
			cause: []string{"could not be named: CLIENT LIST: NOPERM (the guardian's user needs +client|list +client|id)"},
			fix:   []string{"CLIENT KILL ID <id>", "normal 50mb 12mb 60"},
		},
		{
			// The guardian reads the host: "if the host has room" is a number.
			name:   "the dataset is the biggest share: raise maxmemory by the host's room",
			snap:   func(s *monitor.Snapshot) { withBreakdown(s, 950*mib, 900*mib, mib) },
			want:   []idSev{warn(IDMaxmemoryNearLimit)},
			id:     IDMaxmemoryNearLimit,
			cause:  []string{"dataset (used_memory_dataset) 900.0 MiB (95%)"},
			fix:    []string{"raise maxmemory by up to 11.1 GiB (maxmemory up to 12.1 GiB (RAM 16.0 GiB: used_memory 950.0 MiB + MemAvailable 12.0 GiB", "remedies.oom_relief", "or reduce the dataset"},
			notFix: []string{"CLIENT KILL", "if the host has room"},
		},
		{
			name: "the dataset is the biggest share and the host has no room",
			snap: func(s *monitor.Snapshot) {
				withBreakdown(s, 950*mib, 900*mib, mib)
				s.Host.MemAvailable = uint64(100 * mib)
			},
			want:   []idSev{warn(IDMaxmemoryNearLimit)},
			id:     IDMaxmemoryNearLimit,
			fix:    []string{"the host has no room to raise maxmemory (maxmemory up to 228.8 MiB", "or reduce the dataset"},
			notFix: []string{"raise maxmemory by", "oom_relief"},
		},
		{
			name: "replica buffers: the replica class, not maxmemory",
			snap: func(s *monitor.Snapshot) {
				withBreakdown(s, 950*mib, 300*mib, 0)
				s.Redis.Info.MemClientsSlaves = 600 * mib
			},
			want:  []idSev{warn(IDMaxmemoryNearLimit)},
			id:    IDMaxmemoryNearLimit,
			cause: []string{"replica buffers (mem_clients_slaves) 600.0 MiB (63%)"},
			fix:   []string{"client-output-buffer-limit replica", "replica buffers are not counted"},
		},
		{
			name: "buffers maxmemory does not count are left out of its share",
			snap: func(s *monitor.Snapshot) {
				withBreakdown(s, 950*mib, 300*mib, 0)
				s.Redis.Info.MemClientsSlaves, s.Redis.Info.MemNotCountedForEvict = 600*mib, 600*mib
			},
			want: []idSev{},
		},
		{
			name: "no maxmemory, a tight cgroup: the room it leaves",
			snap: func(s *monitor.Snapshot) {
				s.Redis.Info.MaxMemory = 0
				withBreakdown(s, 230*mib, 220*mib, mib)
				s.Redis.Info.UsedMemoryRSS = 240 * mib
				s.Host.Cgroup = monitor.CgroupReading{Known: true, Version: 2, Path: "/system.slice/redis-server.service",
					MemoryMax: uint64(256 * mib), MemoryCurrent: uint64(252 * mib), WorkingSet: uint64(250 * mib)}
			},
			want:    []idSev{warn(IDCgroupMemoryTight), warn(IDMaxmemoryNearLimit), warn(IDMaxmemoryUnset)},
			id:      IDMaxmemoryNearLimit,
			summary: "Redis's RSS is 98% of the room its cgroup leaves it: the OOM killer comes next",
			cause:   []string{"RSS 240.0 MiB; cgroup /system.slice/redis-server.service limit 256.0 MiB, of which the rest of the group holds 10.0 MiB", "dataset (used_memory_dataset) 220.0 MiB (92%)", "RSS above used_memory (allocator) 10.0 MiB"},
			fix:     []string{"set maxmemory below the room its cgroup leaves it (246.0 MiB)"},
		},
		{
			name: "the host is nearly out of memory",
			snap: func(s *monitor.Snapshot) {
				withBreakdown(s, 100*mib, 95*mib, mib)
				s.Host.MemAvailable = uint64(8 * mib)
			},
			want:    []idSev{warn(IDMaxmemoryNearLimit)},
			id:      IDMaxmemoryNearLimit,
			summary: "Redis's RSS is 94% of the room the host leaves it",
			cause:   []string{"RSS 120.0 MiB, MemAvailable 8.0 MiB of 16.0 GiB"},
		},
		{
			name:  "a server without the breakdown keeps the old advice",
			snap:  func(s *monitor.Snapshot) { s.Redis.Info.UsedMemory = 950 * mib },
			want:  []idSev{warn(IDMaxmemoryNearLimit)},
			id:    IDMaxmemoryNearLimit,
			cause: []string{"reports no breakdown"},
			fix:   []string{"raise maxmemory if the host has room"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := healthy()
			tc.snap(&s)
			var h History
			if tc.hist != nil {
				tc.hist(&h, s)
			}
			fs := Diagnose(s, h, DefaultThresholds(), nil)
			if diff := cmp.Diff(tc.want, ids(fs)); diff != "" {
				t.Fatalf("findings (-want +got):\n%s\n%+v", diff, fs)
			}
			if tc.id == "" {
				return
			}
			f := find(t, fs, tc.id)
			contains(t, "summary", f.Summary, tc.summary)
			contains(t, "cause", f.Cause, tc.cause...)
			contains(t, "fix", f.Fix, tc.fix...)
			notContains(t, "fix", f.Fix, tc.notFix...)
		})
	}
}

func TestFragmentationOnAllocatorNumbers(t *testing.T) {
	t.Parallel()
	// measured is issue 24's: DEBUG POPULATE 500000 then 90% deleted, on 7.0.15.
	measured := func(s *monitor.Snapshot) {
		in := &s.Redis.Info
		in.UsedMemory, in.UsedMemoryRSS = 34*mib, 309*mib
		in.MemFragmentationRatio, in.MemFragmentationBytes = 9.09, 275*mib
		in.HasAllocatorFrag, in.AllocatorFragRatio, in.AllocatorFragBytes = true, 6.9, 208*mib
		in.AllocatorAllocated, in.AllocatorActive = 35*mib, 243*mib
		in.AllocatorRSSRatio, in.AllocatorRSSBytes = 1.26, 63*mib
		in.MemAllocator = "jemalloc-5.3.0"
	}
	for _, tc := range []struct {
		name      string
		snap      func(*monitor.Snapshot)
		thr       func(*Thresholds)
		want      bool
		cause     []string
		fix       []string
		notFix    []string
		wantSumma string
	}{
		{
			name: "deleted 90% of the keys: allocator numbers and a fix this build can carry out",
			snap: measured, want: true,
			wantSumma: "the allocator holds 208.0 MiB in fragmented pages (allocator_active / allocator_allocated 6.94)",
			cause:     []string{"allocator_active 243.0 MiB for allocator_allocated 35.0 MiB: 208.0 MiB in pages the allocator holds partly empty (ratio 6.94)", "allocator_rss_bytes 63.0 MiB more are empty pages the allocator gives back by itself"},
			fix: []string{"active defrag (activedefrag yes) works only on builds with Redis's bundled jemalloc, which Debian's packages lack (they refuse it)",
				"remedies.defrag asks the server",
				"On any build: fail over to a replica and restart this one, which would return about 208.0 MiB"},
			notFix: []string{"enable activedefrag yes (jemalloc builds)", "CONFIG SET activedefrag yes"},
		},
		{
			// Valkey 8.1 built without the defrag hint (Debian's), measured:
			// allocator_active 224.6 MB, allocated 30.8 MB, allocator_frag_bytes 0.
			name: "Valkey 8.1 without the defrag hint: the difference, and no activedefrag",
			snap: func(s *monitor.Snapshot) {
				measured(s)
				s.Redis.Info.AllocatorFragRatio, s.Redis.Info.AllocatorFragBytes = 1, 0
			},
			want:   true,
			cause:  []string{"208.0 MiB in pages the allocator holds partly empty", "allocator_frag_bytes reads 0: Valkey 8.1+ measures it only when built with jemalloc's defrag hint"},
			fix:    []string{"active defrag is not available in this build: fail over to a replica and restart this one, which would return about 208.0 MiB"},
			notFix: []string{"CONFIG SET activedefrag"},
		},
		{
			name: "activedefrag already on (so the build has it)",
			snap: func(s *monitor.Snapshot) {
				measured(s)
				s.Redis.Config["activedefrag"] = "yes"
				s.Redis.Info.ActiveDefragRunning = true
			},
			want: true,
			fix:  []string{"activedefrag is on and running now", "return about 208.0 MiB"},
		},
		{
			name: "the demo's 1 MB instance: mem_fragmentation_ratio 7.73 is RSS over a tiny dataset",
			snap: func(s *monitor.Snapshot) {
				in := &s.Redis.Info
				in.UsedMemory, in.UsedMemoryRSS, in.MemFragmentationRatio, in.MemFragmentationBytes = 1*mib, 7*mib+750*kib, 7.73, 6*mib
				in.HasAllocatorFrag, in.AllocatorFragRatio, in.AllocatorFragBytes = true, 1.08, 133*kib
			},
		},
		{
			name: "a high allocator ratio below the floor",
			snap: func(s *monitor.Snapshot) {
				measured(s)
				s.Redis.Info.AllocatorFragBytes, s.Redis.Info.AllocatorActive = 40*mib, 75*mib
			},
		},
		{
			name: "the floor is a threshold",
			snap: measured,
			thr:  func(t *Thresholds) { t.FragmentationMinBytes = 256 * mib },
		},
		{
			name: "a big RSS the allocator will return by itself is not fragmentation",
			snap: func(s *monitor.Snapshot) {
				measured(s)
				s.Redis.Info.AllocatorFragRatio, s.Redis.Info.AllocatorFragBytes, s.Redis.Info.AllocatorRSSBytes = 1.05, 2*mib, 260*mib
				s.Redis.Info.AllocatorActive = 37 * mib
			},
		},
		{
			name: "libc malloc (no allocator numbers): RSS over used_memory, and no defrag",
			snap: func(s *monitor.Snapshot) {
				in := &s.Redis.Info
				in.UsedMemory, in.UsedMemoryRSS, in.MemFragmentationRatio, in.MemFragmentationBytes = 100*mib, 300*mib, 3, 200*mib
				in.MemAllocator = "libc"
			},
			want:   true,
			cause:  []string{"mem_allocator libc"},
			fix:    []string{"active defrag needs jemalloc and this build uses libc", "return about 200.0 MiB"},
			notFix: []string{"CONFIG SET activedefrag"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := healthy()
			tc.snap(&s)
			thr := DefaultThresholds()
			if tc.thr != nil {
				tc.thr(&thr)
			}
			fs := Diagnose(s, History{}, thr, nil)
			var got *Finding
			for i := range fs {
				if fs[i].ID == IDFragmentationHigh {
					got = &fs[i]
				}
			}
			if (got != nil) != tc.want {
				t.Fatalf("fragmentation_high raised %v, want %v: %+v", got != nil, tc.want, fs)
			}
			if got == nil {
				return
			}
			contains(t, "summary", got.Summary, tc.wantSumma)
			contains(t, "cause", got.Cause, tc.cause...)
			contains(t, "fix", got.Fix, tc.fix...)
			notContains(t, "fix", got.Fix, tc.notFix...)
		})
	}
}

// TestOneShotHistoryKeepsLogWindow: a one-shot check's first reading, a second
// earlier, serves its counters only: a log line of five minutes ago still counts,
// as it does for a check without history; the daemon's previous tick narrows it.
func TestOneShotHistoryKeepsLogWindow(t *testing.T) {
	t.Parallel()
	s := healthy()
	withLog(&s, monitor.LogAOFWriteError, "No space left on device", now.Add(-5*time.Minute))
	prev := s
	prev.Time = now.Add(-time.Second)
	for _, tc := range []struct {
		name string
		h    History
		want bool
	}{
		{"no history", History{}, true},
		{"one-shot check", History{Prev: &prev, OneShot: true}, true},
		{"daemon tick", History{Prev: &prev}, false},
	} {
		fs := Diagnose(s, tc.h, DefaultThresholds(), nil)
		got := slices.ContainsFunc(fs, func(f Finding) bool { return f.ID == IDAOFWriteFailed })
		if got != tc.want {
			t.Errorf("%s: aof_write_failed raised %v, want %v: %+v", tc.name, got, tc.want, fs)
		}
	}
}
