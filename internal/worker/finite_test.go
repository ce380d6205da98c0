package worker

import (
	"math"
	"testing"
)

// TestAllFinite puts NaN, +Inf and −Inf at every position of vectors of
// lengths around the four-value stride, beside the largest and smallest
// floats, which must pass.
func TestAllFinite(t *testing.T) {
	for n := 0; n <= 9; n++ {
		v := make([]float64, n)
		for i := range v {
			v[i] = []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 0, -1.5}[i%5]
		}
		if !allFinite(v) {
			t.Fatalf("length %d: finite values reported not finite", n)
		}
		for i := range v {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				keep := v[i]
				v[i] = bad
				if allFinite(v) {
					t.Errorf("length %d: %v at %d not noticed", n, bad, i)
				}
				v[i] = keep
			}
		}
	}
}

func BenchmarkAllFinite(b *testing.B) {
	v := make([]float64, 8000) // the Keras example's gradient
	for i := range v {
		v[i] = float64(i) * 1e-3
	}
	b.SetBytes(8 * int64(len(v)))
	for b.Loop() {
		if !allFinite(v) {
			b.Fatal("finite values reported not finite")
		}
	}
}
