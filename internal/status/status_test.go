package status

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis-guardian/redis-guardian/internal/forkslot"
	"github.com/redis-guardian/redis-guardian/pkg/policy"
)

// TestOKWithStandingHold: oom_shield holds for as long as the instance forks, so
// its entry alone leaves status at 0; any other hold makes it 1.
func TestOKWithStandingHold(t *testing.T) {
	t.Parallel()
	shield := Held{Setting: policy.SettingOOMScoreAdj, Value: "relative", Original: "no", Remedy: policy.RemedyOOMShield}
	toggle := Held{Setting: policy.SettingStopWrites, Value: "no", Original: "yes", Remedy: policy.RemedyStopWrites}
	for _, tc := range []struct {
		name string
		held []Held
		want bool
	}{
		{"nothing held", nil, true},
		{"oom_shield only", []Held{shield}, true},
		{"a stop_writes toggle", []Held{toggle}, false},
		{"both", []Held{shield, toggle}, false},
	} {
		r := Report{Instances: []Instance{{Name: "main", Held: tc.held}}}
		if got := r.OK(); got != tc.want {
			t.Errorf("%s: OK() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestForkSlotsShown: status reads who holds the host's fork slots from the
// slot files, taking none, and says it in the text.
func TestForkSlotsShown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := forkslot.New(dir, 2, "cache")
	if ok, err := s.Take(); !ok || err != nil {
		t.Fatalf("Take = %v, %v", ok, err)
	}
	defer s.Release()
	w := forkslot.New(dir, 2, "main")
	if err := w.Wait(time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	defer w.StopWaiting()
	f := ReadForkSlots(dir, 2)
	want := fmt.Sprintf("cache %d", os.Getpid())
	if f.Error != "" || len(f.Holders) != 2 || f.Holders[0] != want || f.Holders[1] != "" {
		t.Fatalf("ReadForkSlots = %+v; want slot 0 held by %q, slot 1 free", f, want)
	}
	var b strings.Builder
	WriteText(&b, Report{Source: "daemon", Instances: []Instance{{Name: "cache", ForkSlot: true}}, Fork: f})
	waiter := fmt.Sprintf("main %d", os.Getpid())
	for _, line := range []string{"  holds a fork slot\n", "  slot 0: held by " + want + "\n", "  slot 1: free\n",
		"  waiting 1: " + waiter + ", since 2026-12-06T19:00:00Z\n"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, b.String())
		}
	}
	if err := os.Symlink("/etc/passwd", dir+"/fork-slot-1"); err != nil {
		t.Fatal(err)
	}
	if f := ReadForkSlots(dir, 2); f.Error == "" {
		t.Errorf("a symlinked slot file read as %+v; want an error", f)
	}
}

// TestYieldedShown: a setting given over to an operator is named, with how long
// ago and by which remedy, so the operator who wonders why the guardian leaves
// MISCONF alone is told.
func TestYieldedShown(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	var b strings.Builder
	WriteText(&b, Report{Source: "ledger", Time: now, Instances: []Instance{{Name: "main",
		Yielded: FromYields([]policy.Yield{{Remedy: policy.RemedyStopWrites, Setting: policy.SettingStopWrites, At: now.Add(-90 * time.Second)}})}}})
	want := "  yielded stop-writes-on-bgsave-error to an operator 1m30s ago (stop_writes): not taken again until that episode ends\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, b.String())
	}
}
