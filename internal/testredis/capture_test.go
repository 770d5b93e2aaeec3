package testredis

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCaptureFixtures drives every build of the matrix through each fault the
// guardian recognises (fork failure, permission denied, full disk with failing AOF
// writes, killed child) and checks each server logged it in the wording
// pkg/monitor's parsers are tested on. With RG_CAPTURE_FIXTURES naming a directory
// (pkg/monitor/testdata) it also writes INFO, CONFIG GET * and the log there as the
// parsers' fixtures; otherwise into a temp dir.
func TestCaptureFixtures(t *testing.T) {
	dir := os.Getenv("RG_CAPTURE_FIXTURES")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, b := range Matrix(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := Start(t, Options{Build: b, TmpfsSize: "1m", AppendOnly: true})
			c := s.Client(t)
			s.Fill(t, 200, 64)
			info, err := c.Do(ctx, "INFO", "everything").Text()
			if err != nil {
				t.Fatal(err)
			}
			info = strings.ReplaceAll(info, "\n", "\r\n")
			info = strings.ReplaceAll(info, "\r\r\n", "\r\n")
			kv, err := c.ConfigGet(ctx, "*").Result()
			if err != nil {
				t.Fatal(err)
			}
			var cfg strings.Builder
			for _, k := range slices.Sorted(maps.Keys(kv)) {
				cfg.WriteString(k + "\t" + strings.ReplaceAll(kv[k], "\n", " ") + "\n")
			}

			// The faults, one after the other, each ended by a good save.
			saveOK := func() {
				t.Helper()
				_ = c.Do(ctx, "BGSAVE").Err()
				s.WaitFor(t, "a good save", 20*time.Second, SaveStatus("ok"))
			}
			lift := s.FailFork(t)
			_ = c.Do(ctx, "BGSAVE").Err()
			s.WaitFor(t, "the fork to fail", 10*time.Second, SaveStatus("err"))
			lift()
			saveOK()
			lift = s.DenyDir(t)
			_ = c.Do(ctx, "BGSAVE").Err()
			s.WaitFor(t, "the save to be denied", 10*time.Second, SaveStatus("err"))
			lift()
			saveOK()
			lift = s.FillDisk(t)
			_ = c.Do(ctx, "BGSAVE").Err()
			s.WaitFor(t, "the save to fail on a full disk", 10*time.Second, SaveStatus("err"))
			// AOF writes fail too, once MISCONF lets them through.
			if err := c.ConfigSet(ctx, "stop-writes-on-bgsave-error", "no").Err(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				_ = c.Set(ctx, "k", strings.Repeat("x", 4096), 0).Err()
			}
			time.Sleep(1500 * time.Millisecond) // Redis retries the AOF write every second
			lift()
			time.Sleep(1500 * time.Millisecond)
			if err := c.ConfigSet(ctx, "stop-writes-on-bgsave-error", "yes").Err(); err != nil {
				t.Fatal(err)
			}
			saveOK()
			s.SlowChild(t)
			_ = c.Do(ctx, "BGSAVE").Err()
			s.KillChild(t, syscall.SIGKILL)
			s.WaitFor(t, "the killed save to count", 10*time.Second, SaveStatus("err"))

			log, err := os.ReadFile(s.LogFile)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"fork: Resource temporarily unavailable", "Permission denied",
				"No space left on device", "Short write while writing to the AOF file", "AOF write error looks solved", "terminated by signal 9"} {
				if !strings.Contains(string(log), want) {
					t.Errorf("%s's log has no %q: the fault did not happen as the fixtures say", b.Name, want)
				}
			}
			// Paths and pids of this run are kept: the parsers must take them as they come.
			for name, body := range map[string]string{
				"info-" + b.Name + ".txt":   info,
				"config-" + b.Name + ".tsv": cfg.String(),
				"faults-" + b.Name + ".log": string(log),
			} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
