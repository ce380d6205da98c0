package nn

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// BenchmarkGemmPrecision compares gonum's float32 and float64 matrix products
// on the shapes of this package's dense layers: the evidence for computing in
// float64 (see the package documentation).
func BenchmarkGemmPrecision(b *testing.B) {
	shapes := []struct{ m, k, n int }{
		{32, 10, 10},    // Keras example, hidden layer, batch 32
		{256, 784, 512}, // wide MLP, first layer, batch 256
		{256, 512, 512}, // wide MLP, hidden layer, batch 256
	}
	for _, s := range shapes {
		name := fmt.Sprintf("%dx%dx%d", s.m, s.k, s.n)
		b.Run("float64/"+name, func(b *testing.B) {
			a := blas64.General{Rows: s.m, Cols: s.k, Stride: s.k, Data: filled64(s.m * s.k)}
			w := blas64.General{Rows: s.k, Cols: s.n, Stride: s.n, Data: filled64(s.k * s.n)}
			c := blas64.General{Rows: s.m, Cols: s.n, Stride: s.n, Data: make([]float64, s.m*s.n)}
			for i := 0; i < b.N; i++ {
				blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, a, w, 0, c)
			}
			b.ReportMetric(2*float64(s.m*s.k*s.n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run("float32/"+name, func(b *testing.B) {
			a := blas32.General{Rows: s.m, Cols: s.k, Stride: s.k, Data: filled32(s.m * s.k)}
			w := blas32.General{Rows: s.k, Cols: s.n, Stride: s.n, Data: filled32(s.k * s.n)}
			c := blas32.General{Rows: s.m, Cols: s.n, Stride: s.n, Data: make([]float32, s.m*s.n)}
			for i := 0; i < b.N; i++ {
				blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, a, w, 0, c)
			}
			b.ReportMetric(2*float64(s.m*s.k*s.n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func filled64(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i%13) - 6
	}
	return v
}

func filled32(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%13) - 6
	}
	return v
}
