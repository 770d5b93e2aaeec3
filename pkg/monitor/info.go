package monitor

import (
	"strconv"
	"strings"
)

// Info is the typed subset of INFO the guardian reasons about. Fields absent from
// the server's reply (older versions, forks such as Valkey) keep their zero value,
// and Has* flags say whether a version-dependent field was present at all, so the
// policy can tell "0" from "not reported".
type Info struct {
	// Server
	Version       string // redis_version, or valkey_version when the server is Valkey
	ServerName    string // "redis" unless the server says otherwise (server_name:valkey)
	Mode          string // redis_mode: standalone, cluster, sentinel
	ProcessID     int
	RunID         string
	TCPPort       int
	UptimeSeconds int64
	Executable    string
	ConfigFile    string

	// Memory
	UsedMemory            int64
	UsedMemoryRSS         int64
	UsedMemoryPeak        int64
	MaxMemory             int64
	MaxMemoryPolicy       string
	TotalSystemMemory     int64
	MemFragmentationRatio float64
	MemFragmentationBytes int64
	HasFragmentationBytes bool

	// What used_memory is made of (4.0+; HasMemoryBreakdown says whether
	// used_memory_overhead was reported). used_memory = dataset + overhead, and
	// the overhead holds the client buffers, the replication backlog, the AOF
	// buffer and the script caches below, with the rest (start-up memory, the
	// keyspace's hash tables) left over.
	HasMemoryBreakdown bool
	UsedMemoryOverhead int64
	UsedMemoryStartup  int64
	UsedMemoryDataset  int64
	// MemClientsNormal is the buffers of normal, pub/sub and MONITOR clients
	// (and the master link on a replica); MemClientsSlaves the replicas' output
	// buffers beyond the shared backlog.
	MemClientsNormal      int64
	MemClientsSlaves      int64
	MemReplicationBacklog int64
	MemAOFBuffer          int64
	MemClusterLinks       int64
	// UsedMemoryScripts is the scripts' and functions' caches, part of the
	// overhead (the Lua VM itself, used_memory_vm_eval / used_memory_lua, is
	// allocated outside used_memory and so is not part of it).
	UsedMemoryScripts int64
	UsedMemoryVMEval  int64
	// MemNotCountedForEvict is what maxmemory does not count: replica buffers
	// and the AOF buffer.
	MemNotCountedForEvict int64

	// The allocator's own view (5.0+, jemalloc builds; HasAllocatorFrag says
	// whether it was reported). allocator_frag_* is memory in pages the
	// allocator holds partly empty: only active defrag or a restart returns it.
	// allocator_rss_* is pages it holds entirely empty: it gives them back by
	// itself (jemalloc's background thread, MEMORY PURGE).
	HasAllocatorFrag    bool
	AllocatorAllocated  int64
	AllocatorActive     int64
	AllocatorResident   int64
	AllocatorFragRatio  float64
	AllocatorFragBytes  int64
	AllocatorRSSRatio   float64
	AllocatorRSSBytes   int64
	MemAllocator        string
	ActiveDefragRunning bool
	// ActiveDefragHits (INFO stats) counts the allocations active defrag has
	// moved since the server started: a rise says defrag is doing something,
	// even while writes keep allocator_frag_bytes from falling.
	ActiveDefragHits int64

	// Persistence
	Loading                        bool
	AsyncLoading                   bool
	RDBChangesSinceLastSave        int64
	RDBBgsaveInProgress            bool
	RDBLastSaveTime                int64 // unix seconds of the last SUCCESSFUL save
	RDBLastBgsaveStatus            string
	RDBLastBgsaveTimeSec           int64
	RDBCurrentBgsaveTimeSec        int64
	RDBSaves                       int64
	HasRDBSaves                    bool
	RDBLastCOWSize                 int64
	CurrentCOWPeak                 int64
	AOFEnabled                     bool
	AOFRewriteInProgress           bool
	AOFRewriteScheduled            bool
	AOFLastBgrewriteStatus         string
	AOFRewrites                    int64
	AOFRewritesConsecutiveFailures int64
	AOFLastWriteStatus             string
	ModuleForkInProgress           bool
	AOFCurrentSize                 int64
	AOFBaseSize                    int64
	AOFBufferLength                int64
	AOFPendingBioFsync             int64
	AOFDelayedFsync                int64

	// Stats
	TotalCommandsProcessed int64
	InstantaneousOps       int64
	RejectedConnections    int64
	EvictedKeys            int64
	LatestForkUsec         int64
	TotalForks             int64
	// SyncFull counts the full resyncs this master served: a replica that keeps
	// full-syncing makes it grow.
	SyncFull int64
	// OutputBufferLimitDisconnections is client_output_buffer_limit_disconnections
	// (7.4+ only; HasOutputBufferDisconnections says whether it was reported).
	OutputBufferLimitDisconnections int64
	HasOutputBufferDisconnections   bool

	// Replication
	Role string // master or slave
	// Replicas and ReplicasOnline count a master's slaveN lines, and those in
	// state=online (streaming, not in a full sync).
	Replicas, ReplicasOnline   int
	MasterLinkStatus           string // up or down, replicas only
	MasterLinkDownSinceSeconds int64
	ConnectedReplicas          int64

	// Errorstats (6.2+); HasErrorstats is false when the section was absent.
	HasErrorstats    bool
	ErrorstatOOM     int64
	ErrorstatMISCONF int64

	// Keyspace, summed over all databases.
	Keys    int64
	Expires int64
}

// ForkChildRunning reports whether Redis has a fork child of any kind, during which
// BGSAVE fails and temp files are in use.
func (i *Info) ForkChildRunning() bool {
	return i.RDBBgsaveInProgress || i.AOFRewriteInProgress || i.ModuleForkInProgress
}

// ParseInfo parses the reply of INFO. It is pure and tolerant: unknown fields and
// sections are ignored, malformed numbers leave the field at zero, and nothing in the
// input can make it fail, because a guardian that stops watching over a field added
// in a new Redis release would be worse than one that misses that field.
func ParseInfo(s string) Info {
	var in Info
	in.ServerName = "redis"
	in.Merge(s)
	return in
}

// Merge updates in with the fields of an INFO reply that may hold only some
// sections (the light read of a tick): the fields of the sections present are
// replaced, the others keep their values. A section that is summed over lines
// (replication's replicas, keyspace, errorstats) starts again from zero when its
// header is seen.
func (in *Info) Merge(s string) {
	keyspace := false
	for len(s) > 0 {
		var line string
		line, s, _ = strings.Cut(s, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == '#' {
			// EqualFold rather than ToLower: no string per section header per tick.
			section := strings.TrimSpace(line[1:])
			keyspace = strings.EqualFold(section, "keyspace")
			switch {
			case keyspace:
				in.Keys, in.Expires = 0, 0
			case strings.EqualFold(section, "replication"):
				in.Replicas, in.ReplicasOnline = 0, 0
			case strings.EqualFold(section, "errorstats"):
				in.HasErrorstats = true
				in.ErrorstatOOM, in.ErrorstatMISCONF = 0, 0
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if keyspace || strings.HasPrefix(k, "db") && strings.Contains(v, "keys=") {
			keys, expires := parseKeyspace(v)
			in.Keys += keys
			in.Expires += expires
			continue
		}
		if strings.HasPrefix(k, "slave") && k != "slave_read_only" && strings.Contains(v, "state=") {
			// slaveN:ip=...,port=...,state=online,offset=...,lag=0 (a master's replicas)
			in.Replicas++
			if strings.Contains(v, "state=online") {
				in.ReplicasOnline++
			}
			continue
		}
		in.set(k, v)
	}
}

// set assigns one field. A switch on the key keeps parsing allocation-free: the
// guardian parses INFO on every tick of every instance.
func (in *Info) set(k, v string) {
	switch k {
	case "redis_version":
		if in.ServerName == "redis" || in.Version == "" {
			in.Version = v
		}
	case "valkey_version":
		in.Version = v
		in.ServerName = "valkey"
	case "server_name":
		in.ServerName = v
	case "redis_mode", "server_mode":
		in.Mode = v
	case "process_id":
		in.ProcessID = int(atoi(v))
	case "run_id":
		in.RunID = v
	case "tcp_port":
		in.TCPPort = int(atoi(v))
	case "uptime_in_seconds":
		in.UptimeSeconds = atoi(v)
	case "executable":
		in.Executable = v
	case "config_file":
		in.ConfigFile = v
	case "used_memory":
		in.UsedMemory = atoi(v)
	case "used_memory_rss":
		in.UsedMemoryRSS = atoi(v)
	case "used_memory_peak":
		in.UsedMemoryPeak = atoi(v)
	case "maxmemory":
		in.MaxMemory = atoi(v)
	case "maxmemory_policy":
		in.MaxMemoryPolicy = v
	case "total_system_memory":
		in.TotalSystemMemory = atoi(v)
	case "mem_fragmentation_ratio":
		in.MemFragmentationRatio = atof(v)
	case "mem_fragmentation_bytes":
		in.MemFragmentationBytes = atoi(v)
		in.HasFragmentationBytes = true
	case "used_memory_overhead":
		in.UsedMemoryOverhead = atoi(v)
		in.HasMemoryBreakdown = true
	case "used_memory_startup":
		in.UsedMemoryStartup = atoi(v)
	case "used_memory_dataset":
		in.UsedMemoryDataset = atoi(v)
	case "mem_clients_normal":
		in.MemClientsNormal = atoi(v)
	case "mem_clients_slaves":
		in.MemClientsSlaves = atoi(v)
	case "mem_replication_backlog":
		in.MemReplicationBacklog = atoi(v)
	case "mem_aof_buffer":
		in.MemAOFBuffer = atoi(v)
	case "mem_cluster_links":
		in.MemClusterLinks = atoi(v)
	case "used_memory_scripts":
		in.UsedMemoryScripts = atoi(v)
	case "used_memory_vm_eval", "used_memory_lua":
		// 7.0+ prints both, the same number; 6.x only used_memory_lua.
		in.UsedMemoryVMEval = atoi(v)
	case "mem_not_counted_for_evict":
		in.MemNotCountedForEvict = atoi(v)
	case "allocator_allocated":
		in.AllocatorAllocated = atoi(v)
	case "allocator_active":
		in.AllocatorActive = atoi(v)
	case "allocator_resident":
		in.AllocatorResident = atoi(v)
	case "allocator_frag_ratio":
		in.AllocatorFragRatio = atof(v)
	case "allocator_frag_bytes":
		in.AllocatorFragBytes = atoi(v)
		in.HasAllocatorFrag = true
	case "allocator_rss_ratio":
		in.AllocatorRSSRatio = atof(v)
	case "allocator_rss_bytes":
		in.AllocatorRSSBytes = atoi(v)
	case "mem_allocator":
		in.MemAllocator = v
	case "active_defrag_running":
		in.ActiveDefragRunning = v != "0" && v != ""
	case "active_defrag_hits":
		in.ActiveDefragHits = atoi(v)
	case "loading":
		in.Loading = v == "1"
	case "async_loading":
		in.AsyncLoading = v == "1"
	case "rdb_changes_since_last_save", "changes_since_last_save":
		in.RDBChangesSinceLastSave = atoi(v)
	case "rdb_bgsave_in_progress", "bgsave_in_progress":
		in.RDBBgsaveInProgress = v == "1"
	case "rdb_last_save_time", "last_save_time":
		in.RDBLastSaveTime = atoi(v)
	case "rdb_last_bgsave_status":
		in.RDBLastBgsaveStatus = v
	case "rdb_last_bgsave_time_sec":
		in.RDBLastBgsaveTimeSec = atoi(v)
	case "rdb_current_bgsave_time_sec":
		in.RDBCurrentBgsaveTimeSec = atoi(v)
	case "rdb_saves":
		in.RDBSaves = atoi(v)
		in.HasRDBSaves = true
	case "rdb_last_cow_size":
		in.RDBLastCOWSize = atoi(v)
	case "current_cow_peak":
		in.CurrentCOWPeak = atoi(v)
	case "aof_enabled":
		in.AOFEnabled = v == "1"
	case "aof_rewrite_in_progress":
		in.AOFRewriteInProgress = v == "1"
	case "aof_rewrite_scheduled":
		in.AOFRewriteScheduled = v == "1"
	case "aof_last_bgrewrite_status":
		in.AOFLastBgrewriteStatus = v
	case "aof_rewrites":
		in.AOFRewrites = atoi(v)
	case "aof_rewrites_consecutive_failures":
		in.AOFRewritesConsecutiveFailures = atoi(v)
	case "aof_last_write_status":
		in.AOFLastWriteStatus = v
	case "module_fork_in_progress":
		in.ModuleForkInProgress = v == "1"
	case "aof_current_size":
		in.AOFCurrentSize = atoi(v)
	case "aof_base_size":
		in.AOFBaseSize = atoi(v)
	case "aof_buffer_length":
		in.AOFBufferLength = atoi(v)
	case "aof_pending_bio_fsync":
		in.AOFPendingBioFsync = atoi(v)
	case "aof_delayed_fsync":
		in.AOFDelayedFsync = atoi(v)
	case "total_commands_processed":
		in.TotalCommandsProcessed = atoi(v)
	case "instantaneous_ops_per_sec":
		in.InstantaneousOps = atoi(v)
	case "rejected_connections":
		in.RejectedConnections = atoi(v)
	case "evicted_keys":
		in.EvictedKeys = atoi(v)
	case "latest_fork_usec":
		in.LatestForkUsec = atoi(v)
	case "total_forks":
		in.TotalForks = atoi(v)
	case "sync_full":
		in.SyncFull = atoi(v)
	case "client_output_buffer_limit_disconnections":
		in.OutputBufferLimitDisconnections = atoi(v)
		in.HasOutputBufferDisconnections = true
	case "role":
		in.Role = v
	case "master_link_status":
		in.MasterLinkStatus = v
	case "master_link_down_since_seconds":
		in.MasterLinkDownSinceSeconds = atoi(v)
	case "connected_slaves":
		in.ConnectedReplicas = atoi(v)
	case "errorstat_OOM":
		in.ErrorstatOOM = errorstatCount(v)
	case "errorstat_MISCONF":
		in.ErrorstatMISCONF = errorstatCount(v)
	}
}

// parseKeyspace reads "keys=1,expires=0,avg_ttl=0".
func parseKeyspace(v string) (keys, expires int64) {
	for len(v) > 0 {
		var kv string
		kv, v, _ = strings.Cut(v, ",")
		k, n, _ := strings.Cut(kv, "=")
		switch k {
		case "keys":
			keys = atoi(n)
		case "expires":
			expires = atoi(n)
		}
	}
	return keys, expires
}

// errorstatCount reads "count=3".
func errorstatCount(v string) int64 {
	_, n, ok := strings.Cut(v, "count=")
	if !ok {
		return 0
	}
	n, _, _ = strings.Cut(n, ",")
	return atoi(n)
}

func atoi(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func atof(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0
	}
	return f
}
