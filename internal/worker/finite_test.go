package worker

import (
	"math"
	"testing"
)

// TestAllFinite puts NaN, +Inf and −Inf at every position of vectors of
// lengths around the four-value stride of the Go loop (float64) and the
// 32-value one of the assembly (float32), beside the largest and smallest
// floats, which must pass.
func TestAllFinite(t *testing.T) {
	t.Run("float64", func(t *testing.T) {
		testAllFinite(t, 9, []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 0, -1.5})
	})
	t.Run("float32", func(t *testing.T) {
		testAllFinite(t, 70, []float32{math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0, -1.5})
	})
}

func testAllFinite[T float32 | float64](t *testing.T, maxLen int, ok []T) {
	for n := 0; n <= maxLen; n++ {
		v := make([]T, n)
		for i := range v {
			v[i] = ok[i%len(ok)]
		}
		if !allFinite(v) {
			t.Fatalf("length %d: finite values reported not finite", n)
		}
		for i := range v {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				keep := v[i]
				v[i] = T(bad)
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
