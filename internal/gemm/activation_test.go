package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestActivationsMatchMath checks Sigmoid and Tanh against math's
// functions to 1e-13 (relative, or absolute near zero) over a wide range,
// and at zero, signed zero, tiny, huge, infinite and NaN inputs.
func TestActivationsMatchMath(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	x := []float64{0, math.Copysign(0, -1), 1e-300, -1e-10, 0.01, -0.01, 0.00999, 0.0625, 0.3466, -0.3466,
		20, -20, 36, -36, 400, -400, 800, -800, math.Inf(1), math.Inf(-1), math.NaN(), 1, 2, 3}
	for range 4000 {
		x = append(x, (r.Float64()*2-1)*math.Pow(10, r.Float64()*4-3))
	}
	for _, c := range []struct {
		name string
		fast func(dst, src []float64)
		ref  func(float64) float64
	}{{"sigmoid", Sigmoid, sigmoidGo}, {"tanh", Tanh, math.Tanh}} {
		got := make([]float64, len(x))
		c.fast(got, x)
		for i, v := range x {
			want := c.ref(v)
			switch {
			case math.IsNaN(want):
				if !math.IsNaN(got[i]) {
					t.Fatalf("%s(%v) = %v, want NaN", c.name, v, got[i])
				}
			case math.Abs(got[i]-want) > 1e-13*math.Max(math.Abs(want), 1e-3) && math.Abs(got[i]-want) > 1e-300:
				t.Fatalf("%s(%v) = %v, want %v", c.name, v, got[i], want)
			case want == 0 && math.Signbit(got[i]) != math.Signbit(want):
				t.Fatalf("%s(%v) = %v, want %v", c.name, v, got[i], want)
			}
		}
	}
}

func BenchmarkSigmoid(b *testing.B) {
	x, y := make([]float64, 4096), make([]float64, 4096)
	for i := range x {
		x[i] = float64(i%200-100) / 10
	}
	b.Run("asm", func(b *testing.B) {
		for range b.N {
			Sigmoid(y, x)
		}
	})
	b.Run("go", func(b *testing.B) {
		for range b.N {
			for i, v := range x {
				y[i] = sigmoidGo(v)
			}
		}
	})
}
