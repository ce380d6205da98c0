package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestScaledGradientsReady checks the ranges ScaledGradientsReady reports
// on models mixing dense, convolution, pooling, dropout and recurrent
// layers: they come last layer first, contiguous, cover the buffer, and
// each is final when reported: its values then are ScaledGradients', and
// overwriting it in the callback (as a reduction on another goroutine
// would) changes neither the later ranges nor the loss.
func TestScaledGradientsReady(t *testing.T) {
	cases := []struct {
		name  string
		input []int
		specs []LayerSpec
	}{
		{"mlp with dropout", []int{37}, []LayerSpec{
			{Type: "dense", Units: 96, Activation: "relu"},
			{Type: "dropout", Rate: 0.3},
			{Type: "dense", Units: 80, Activation: "relu"},
			{Type: "dense", Units: 10, Activation: "softmax"}}},
		{"cnn", []int{10, 10, 1}, []LayerSpec{
			{Type: "conv2d", Filters: 8, KernelSize: []int{3, 3}, Activation: "relu"},
			{Type: "max_pooling2d", PoolSize: []int{2, 2}},
			{Type: "conv2d", Filters: 16, KernelSize: []int{3, 3}, Activation: "relu"},
			{Type: "flatten"},
			{Type: "dense", Units: 10, Activation: "softmax"}}},
		{"lstm", []int{36}, []LayerSpec{
			{Type: "reshape", TargetShape: []int{6, 6}},
			{Type: "lstm", Units: 12},
			{Type: "dense", Units: 10, Activation: "softmax"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := Spec{InputShape: c.input, Layers: c.specs, Loss: SparseCategoricalCrossentropy, Optimizer: mustOptimizer(t, "sgd")}
			m, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			m.Initialize(4)
			b := randomBatch(m, 9, false, rand.New(rand.NewPCG(5, 6)))
			wantLoss := m.ScaledGradients(b, 3, 0.25)
			want := gradsOf(m)

			clear(m.Grads32())
			var ranges [][2]int
			var reported [][]float64
			loss := m.ScaledGradientsReady(b, 3, 0.25, func(lo, hi int) {
				ranges = append(ranges, [2]int{lo, hi})
				reported = append(reported, gradsOf(m)[lo:hi])
				for i := lo; i < hi; i++ {
					m.Grads32()[i] = float32(math.NaN())
				}
			})
			if loss != wantLoss {
				t.Fatalf("loss %v with ready, %v without", loss, wantLoss)
			}
			if len(ranges) < 2 {
				t.Fatalf("ranges %v: want one per layer with parameters", ranges)
			}
			next := m.NumParams()
			for i, r := range ranges {
				if r[1] != next || r[0] >= r[1] {
					t.Fatalf("ranges %v: range %d does not end where the one before began (%d)", ranges, i, next)
				}
				next = r[0]
				if !slices.Equal(reported[i], want[r[0]:r[1]]) {
					t.Fatalf("range %v: values when reported differ from ScaledGradients'", r)
				}
			}
			if next != 0 {
				t.Fatalf("ranges %v do not reach the buffer's start", ranges)
			}
			for i, g := range gradsOf(m) {
				if !math.IsNaN(g) {
					t.Fatalf("gradient %d written after its range was reported", i)
				}
			}
		})
	}
}
