package nn

import "testing"

func BenchmarkAdamStep(b *testing.B) {
	for _, n := range []int{8070, 669706} {
		b.Run(map[int]string{8070: "params=8070", 669706: "params=669706"}[n], func(b *testing.B) {
			spec, _ := DefaultOptimizer("adam")
			o, _ := NewOptimizer(spec, n)
			p, g := make([]float64, n), make([]float64, n)
			for i := range g {
				g[i] = float64(i%7) - 3
			}
			for i := 0; i < b.N; i++ {
				o.Step(p, g)
			}
		})
	}
}
