package nn

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestCNNGradientsIndependentOfCores computes examples/cnn.json's loss and
// gradients on one, two and three cores: the convolutions' products are
// split across the cores, and the results are bit-identical.
func TestCNNGradientsIndependentOfCores(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	spec := Spec{InputShape: []int{28, 28, 1}, Layers: []LayerSpec{
		{Type: "conv2d", Filters: 32, KernelSize: Pair{3, 3}, Activation: "relu"}, {Type: "max_pooling2d"},
		{Type: "conv2d", Filters: 64, KernelSize: Pair{3, 3}, Activation: "relu"}, {Type: "max_pooling2d"},
		{Type: "flatten"}, {Type: "dense", Units: 128, Activation: "relu"}, {Type: "dense", Units: 10, Activation: "softmax"},
	}, Loss: SparseCategoricalCrossentropy, Optimizer: OptimizerSpec{Name: "sgd", LearningRate: 0.1}}
	var wantLoss float64
	var want []float64
	for _, procs := range []int{1, 2, 3} {
		runtime.GOMAXPROCS(procs)
		m, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		m.Initialize(1)
		loss := m.ComputeGradients(randomBatch(m, 24, false, rand.New(rand.NewPCG(3, 4))), 0)
		if want == nil {
			wantLoss, want = loss, gradsOf(m)
			continue
		}
		if math.Float64bits(loss) != math.Float64bits(wantLoss) {
			t.Fatalf("loss %v on %d cores, %v on one", loss, procs, wantLoss)
		}
		for i, g := range gradsOf(m) {
			if math.Float64bits(g) != math.Float64bits(want[i]) {
				t.Fatalf("gradient %d is %v on %d cores, %v on one", i, g, procs, want[i])
			}
		}
	}
}
