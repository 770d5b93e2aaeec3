package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-guardian/redis-guardian/internal/testredis"
)

// watched are the settings some remedy holds: the observer compares each with the
// value the soak configured (or an operator set) and looks for it in the ledger.
var watched = []string{
	"stop-writes-on-bgsave-error", "save", "auto-aof-rewrite-percentage", "oom-score-adj",
	"no-appendfsync-on-rewrite", "client-output-buffer-limit", "activedefrag", "active-defrag-cycle-max",
}

// baseArgs configure every instance. They are command-line arguments, so a
// restart of Redis brings them back whatever a CONFIG REWRITE put into the config
// file: after a restart the soak's values are the originals again. maxmemory
// makes a runaway MONITOR and a growing dataset reject writes with OOM.
var baseArgs = []string{
	"--maxmemory", "64mb", "--maxmemory-policy", "noeviction",
	"--stop-writes-on-bgsave-error", "yes", "--oom-score-adj", "no",
	"--auto-aof-rewrite-percentage", "100", "--replicaof", "no", "one",
	// After testredis's --save "" (NoSave): that resets what a config file
	// rewritten by CONFIG REWRITE says, so the save points are exactly these.
	"--save", "10 1",
}

// startServers starts one server per build, on a 64 MiB tmpfs (for disk_full),
// with a config file (for CONFIG REWRITE), TCP (so the others can replicate from
// the first) and save points that make Redis save every 10 s under the write load.
func startServers(t *scope, builds []testredis.Build) ([]*testredis.Server, error) {
	var out []*testredis.Server
	err := try(t, func() {
		for _, b := range builds {
			out = append(out, testredis.Start(t, testredis.Options{
				Build: b, TmpfsSize: "64m", TCP: true, NoSave: true,
				ConfigText: "# redis-guardian soak\n", Args: baseArgs,
			}))
		}
	})
	return out, err
}

// client returns a client of one server for the soak's own commands.
func client(s *testredis.Server) *redis.Client {
	return redis.NewClient(&redis.Options{
		Network: "unix", Addr: s.Socket, MaxRetries: -1, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
	})
}

// configGet reads the watched settings with one CONFIG GET (7.0+ takes several).
func configGet(ctx context.Context, c *redis.Client) (map[string]string, error) {
	args := []any{"CONFIG", "GET"}
	for _, s := range watched {
		args = append(args, s)
	}
	res, err := c.Do(ctx, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("CONFIG GET: %w", err)
	}
	out := map[string]string{}
	switch r := res.(type) {
	case map[any]any: // RESP3
		for k, v := range r {
			out[fmt.Sprint(k)] = fmt.Sprint(v)
		}
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			out[fmt.Sprint(r[i])] = fmt.Sprint(r[i+1])
		}
	default:
		return nil, fmt.Errorf("CONFIG GET: unexpected reply %T", res)
	}
	for _, s := range watched {
		if _, ok := out[s]; !ok {
			return nil, fmt.Errorf("CONFIG GET: no %s in the reply", s)
		}
	}
	return out, nil
}

// infoFields reads INFO server, persistence and replication as a field -> value map.
func infoFields(ctx context.Context, c *redis.Client) (map[string]string, error) {
	raw, err := c.Info(ctx, "server", "persistence", "replication").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO: %w", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(raw, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m, nil
}
