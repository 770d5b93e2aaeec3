package policy

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWorst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fs   []Finding
		want Severity
	}{
		{name: "none", want: ""},
		{name: "empty", fs: []Finding{}, want: ""},
		{name: "warnings", fs: []Finding{{ID: "a", Severity: Warning}, {ID: "b", Severity: Warning}}, want: Warning},
		{name: "critical last", fs: []Finding{{ID: "a", Severity: Warning}, {ID: "b", Severity: Critical}}, want: Critical},
		{name: "critical first", fs: []Finding{{ID: "a", Severity: Critical}, {ID: "b", Severity: Warning}}, want: Critical},
		{name: "unknown severity ignored", fs: []Finding{{ID: "a", Severity: "info"}}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Worst(tc.fs); got != tc.want {
				t.Errorf("Worst = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1 << 20, "1.0 MiB"},
		{50 << 20, "50.0 MiB"},
		{1<<30 + 1<<29, "1.5 GiB"},
		{1 << 40, "1.0 TiB"},
		{1 << 50, "1.0 PiB"},
		{1 << 60, "1024.0 PiB"}, // PiB is the largest unit
		{-2048, "-2.0 KiB"},
		{-1, "-1 B"},
		{math.MaxInt64, "8192.0 PiB"},
		{math.MinInt64, "-9223372036854775808 B"}, // must not recurse forever
	} {
		if got := HumanBytes(tc.in); got != tc.want {
			t.Errorf("HumanBytes(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSortFindings(t *testing.T) {
	t.Parallel()
	fs := []Finding{
		{ID: "swapping", Severity: Warning},
		{ID: "misconf_rdb", Severity: Critical},
		{ID: "fork_slow", Severity: Warning},
		{ID: "datadir_not_writable", Severity: Critical},
	}
	sortFindings(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID)
	}
	want := []string{"datadir_not_writable", "misconf_rdb", "fork_slow", "swapping"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestKnownIDsUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, id := range KnownIDs {
		if seen[id] {
			t.Errorf("%q is listed twice", id)
		}
		seen[id] = true
	}
}
