package policy

import (
	"testing"
)

// BenchmarkDiagnose is the policy's per-tick cost on a healthy instance (the steady
// state) and on one in MISCONF.
func BenchmarkDiagnose(b *testing.B) {
	for _, bc := range []struct {
		name string
		edit func(in *Input)
	}{{"healthy", nil}, {"misconf", misconf}} {
		b.Run(bc.name, func(b *testing.B) {
			in := decideInput()
			if bc.edit != nil {
				bc.edit(&in)
			}
			prev := in.Snapshot
			h := History{Prev: &prev}
			th := DefaultThresholds()
			b.ReportAllocs()
			for b.Loop() {
				_ = Diagnose(in.Snapshot, h, th, nil)
			}
		})
	}
}

func BenchmarkDecide(b *testing.B) {
	for _, bc := range []struct {
		name string
		edit func(in *Input)
	}{{"healthy", nil}, {"misconf", misconf}} {
		b.Run(bc.name, func(b *testing.B) {
			in := decideInput()
			in.Rand = func() float64 { return 0.5 }
			if bc.edit != nil {
				bc.edit(&in)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Decide(in, State{})
			}
		})
	}
}
