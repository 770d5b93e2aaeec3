package remediate

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// fuzzLedgerPath is the path decodeLedger names in its errors.
const fuzzLedgerPath = "/var/lib/redis-guardian/main.ledger.json"

// maxLedgerErrorBytes bounds a decode error's message beyond the path: it ends up
// in the journal and on root's terminal (restore), and the file is input from a
// directory another uid can write.
const maxLedgerErrorBytes = 1024

// realLedgers returns the files a FileLedger writes for the changes each remedy
// makes: one file per remedy, then one holding all of them.
func realLedgers(f *testing.F) [][]byte {
	f.Helper()
	at := time.Date(2026, 12, 6, 15, 4, 5, 123456789, time.FixedZone("CET", 3600))
	held := []Change{
		{Setting: policy.SettingStopWrites, Original: "yes", Value: "no", Remedy: policy.RemedyStopWrites, Reason: "misconf_rdb"},
		{Setting: policy.SettingRewritePercent, Original: "100", Value: "0", Remedy: policy.RemedyRewriteDeferral, Reason: "aof_rewrite_storm", Applied: true, FileValue: "100"},
		{Setting: policy.SettingSave, Original: "3600 1 300 100 60 10000", Value: "", Remedy: policy.RemedyForkBudget, Reason: "fork_budget"},
		{Setting: policy.SettingNoFsyncOnRewrite, Original: "no", Value: "yes", Remedy: policy.RemedyFsyncRelief, Reason: "aof_fsync_stall"},
		{Setting: policy.SettingOOMScoreAdj, Original: "no", Value: "yes", Remedy: policy.RemedyOOMShield, Reason: "oom_risk"},
		{Setting: policy.SettingOutputBufferLimit, Original: "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
			Value: "normal 0 0 0 slave 1073741824 268435456 60 pubsub 33554432 8388608 60", Remedy: policy.RemedyReplicaBuffer, Reason: "replica_resync_loop"},
		{Setting: policy.SettingMaxmemory, Original: "1073741824", Value: "1181116006", Remedy: policy.RemedyOOMRelief, Reason: "oom_rejections"},
		{Setting: policy.SettingActiveDefrag, Original: "no", Value: "yes", Remedy: policy.RemedyDefrag, Reason: "fragmentation"},
		{Setting: policy.SettingDefragCycleMax, Original: "25", Value: "10", Remedy: policy.RemedyDefrag, Reason: "fragmentation"},
	}
	dir := f.TempDir()
	all, err := OpenFileLedger(dir, "all")
	if err != nil {
		f.Fatal(err)
	}
	defer all.Close()
	var out [][]byte
	for _, c := range held {
		name := c.Remedy + "-" + c.Setting
		c.Instance, c.Addr, c.RunID, c.ConfigFile, c.Time = "main", "127.0.0.1:6380", "5f3c0e1d2a", "/etc/redis/redis.conf", at
		if err := policy.CheckHeld(c.Remedy, c.Setting, c.Original, c.Value); err != nil {
			f.Fatalf("seed %s: %v", c.Setting, err)
		}
		one, err := OpenFileLedger(dir, name)
		if err != nil {
			f.Fatal(err)
		}
		if err := one.Record(c); err != nil {
			f.Fatal(err)
		}
		_ = one.Close()
		if err := all.Record(c); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(LedgerPath(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	b, err := os.ReadFile(all.Path())
	if err != nil {
		f.Fatal(err)
	}
	return append(out, b)
}

// FuzzDecodeLedger checks the decode of a ledger file's bytes: it never panics; an
// error names the file and stays short; what it accepts passes policy.CheckHeld,
// names each setting once, and comes back the same once written again the way a
// FileLedger writes it (so a guardian that loads a ledger and saves it changes
// nothing it holds).
func FuzzDecodeLedger(f *testing.F) {
	for _, b := range realLedgers(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"changes":[]}`))
	f.Add([]byte(`{"version":2,"changes":[]}`))
	f.Add([]byte(`{"version":1,"changes":[{"setting":"requirepass","original":"","value":"x","remedy":"stop_writes"}]}`))
	f.Add([]byte(`{"version":1,"changes":[{"setting":"save","original":"1 1","value":"","remedy":"fork_budget","time":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeLedger(fuzzLedgerPath, b)
		if err != nil {
			if got != nil {
				t.Errorf("an error (%v) and entries %+v", err, got)
			}
			checkLedgerError(t, err)
			return
		}
		seen := map[string]Change{}
		for _, c := range got {
			if err := policy.CheckHeld(c.Remedy, c.Setting, c.Original, c.Value); err != nil {
				t.Errorf("accepted an entry no remedy makes: %+v: %v", c, err)
			}
			if _, dup := seen[c.Setting]; dup {
				t.Errorf("accepted two entries for %s", c.Setting)
			}
			seen[c.Setting] = c
		}
		enc, err := encodeLedger(seen)
		if err != nil {
			t.Fatalf("accepted entries that cannot be written again: %v", err)
		}
		again, err := decodeLedger(fuzzLedgerPath, enc)
		if err != nil {
			t.Fatalf("its own encoding does not decode: %v\n%s", err, enc)
		}
		if diff := cmp.Diff(sorted(seen), again, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("decode, encode, decode changes the entries (-first +second):\n%s", diff)
		}
	})
}

// checkLedgerError checks that a decode error names the file and is bounded.
func checkLedgerError(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if !strings.Contains(msg, fuzzLedgerPath) {
		t.Errorf("the error does not name the file: %s", msg)
	}
	if n := len(msg) - len(fuzzLedgerPath); n > maxLedgerErrorBytes {
		t.Errorf("the error is %d bytes beyond the path: %.300s…", n, msg)
	}
}

// TestDecodeLedgerRefusesDuplicates: a guardian never writes two entries for one
// setting, and loading such a file kept only the last, silently dropping the
// other's original, the value to give back.
func TestDecodeLedgerRefusesDuplicates(t *testing.T) {
	t.Parallel()
	b := []byte(`{"version":1,"changes":[
	{"setting":"stop-writes-on-bgsave-error","original":"yes","value":"no","remedy":"stop_writes"},
	{"setting":"auto-aof-rewrite-percentage","original":"100","value":"0","remedy":"rewrite_deferral"},
	{"setting":"stop-writes-on-bgsave-error","original":"no","value":"no","remedy":"stop_writes"}]}`)
	got, err := decodeLedger(fuzzLedgerPath, b)
	if err == nil {
		t.Fatalf("decoded %+v; want an error", got)
	}
	for _, want := range []string{fuzzLedgerPath, "entries 1 and 3", `"stop-writes-on-bgsave-error"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestDecodeLedgerErrorBounded: encoding/json and time put the offending value in
// their errors whole; a forged ledger must not fill the journal or root's terminal.
func TestDecodeLedgerErrorBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("9", 100_000)
	for name, doc := range map[string]string{
		"time":   `{"version":1,"changes":[{"setting":"save","time":"` + long + `"}]}`,
		"number": `{"version":1` + long + `,"changes":[]}`,
		"type":   `{"version":1,"changes":[{"applied":` + long + `}]}`,
	} {
		_, err := decodeLedger(fuzzLedgerPath, []byte(doc))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		checkLedgerError(t, err)
		if !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: error %q does not say the file is corrupt", name, err)
		}
	}
}
