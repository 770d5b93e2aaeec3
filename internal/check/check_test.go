package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/redis-guardian/redis-guardian/pkg/monitor"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

func result() Result {
	up := monitor.Snapshot{Redis: monitor.RedisReading{Info: monitor.Info{UsedMemory: 1000, MaxMemory: 4000, MemFragmentationRatio: 1.2}}}
	up.Host = monitor.HostReading{Available: true, DataDir: monitor.DirReading{Known: true, UsedPercent: 42.5}}
	down := monitor.Snapshot{Redis: monitor.RedisReading{Err: errors.New("dial: refused")}}
	return Result{Status: "CRITICAL", Instances: []InstanceResult{
		{Name: "main", Addr: "/run/redis.sock", Status: "OK", Findings: []policy.Finding{}, Log: "/var/log/redis/redis-server.log", snapshot: up},
		{Name: "cache", Addr: "127.0.0.1:6380", Status: "CRITICAL", Log: "unknown", snapshot: down, Findings: []policy.Finding{
			{ID: "redis_unreachable", Severity: policy.Critical, Summary: "Redis does not answer", Cause: "dial: refused", Fix: "start it"},
		}},
	}}
}

func TestWriteTextPluginLine(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteText(&b, result()); err != nil {
		t.Fatal(err)
	}
	first, rest, _ := strings.Cut(b.String(), "\n")
	want := "REDIS-GUARDIAN CRITICAL - 2 instance(s); main ok; cache: redis_unreachable | " +
		"'main_up'=1 'main_latency'=0.000000s 'main_used_memory'=1000B;;;0;4000 'main_fragmentation_ratio'=1.20 " +
		"'main_changes_since_save'=0 'main_disk_used'=42.5%;;;0;100 'cache_up'=0"
	if first != want {
		t.Errorf("status line:\n got %q\nwant %q", first, want)
	}
	for _, s := range []string{"[cache] 127.0.0.1:6380: CRITICAL", "CRITICAL redis_unreachable: Redis does not answer", "cause:  dial: refused", "fix: start it"} {
		if !strings.Contains(rest, s) {
			t.Errorf("text output lacks %q:\n%s", s, rest)
		}
	}
}

func TestWriteJSONShape(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteJSON(&b, result()); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status    string `json:"status"`
		Instances []struct {
			Name, Addr, Status string
			Findings           []map[string]string
		} `json:"instances"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("invalid json: %v\n%s", err, b.String())
	}
	if got.Status != "CRITICAL" || len(got.Instances) != 2 || got.Instances[1].Findings[0]["id"] != "redis_unreachable" {
		t.Errorf("unexpected json: %s", b.String())
	}
	if got.Instances[0].Findings == nil {
		t.Errorf("a healthy instance must have findings [], not null: %s", b.String())
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	for status, code := range map[string]int{"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3, "": 3} {
		if got := ExitCode(status); got != code {
			t.Errorf("ExitCode(%q) = %d, want %d", status, got, code)
		}
	}
}
