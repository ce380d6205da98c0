package nn

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// TestLayersMatchReference compares the outputs of conv2d, max_pooling2d,
// simple_rnn and lstm layers with PyTorch 1.13's, computed in float64 by
// testdata/reference.py from the same parameters and inputs laid out as
// Keras lays them out: the layers follow Keras's semantics, parameter
// layout and padding rules.
func TestLayersMatchReference(t *testing.T) {
	data, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string][]float64
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	cases := map[string]Spec{
		"conv2d valid 5x5x2 k3 f3": {InputShape: []int{5, 5, 2},
			Layers: []LayerSpec{{Type: "conv2d", Filters: 3, KernelSize: Pair{3, 3}, Dtype: "float64"}}},
		"conv2d same 6x5x2 k3x2 s2 f3": {InputShape: []int{6, 5, 2},
			Layers: []LayerSpec{{Type: "conv2d", Filters: 3, KernelSize: Pair{3, 2}, Strides: Pair{2, 2}, Padding: "same", Dtype: "float64"}}},
		"max_pooling2d valid 6x6x2 p2": {InputShape: []int{6, 6, 2}, Layers: []LayerSpec{{Type: "max_pooling2d"}}},
		"max_pooling2d same 5x5x2 p3 s2": {InputShape: []int{5, 5, 2},
			Layers: []LayerSpec{{Type: "max_pooling2d", PoolSize: Pair{3, 3}, Strides: Pair{2, 2}, Padding: "same"}}},
		"simple_rnn 4x3 u5":     {InputShape: []int{4, 3}, Layers: []LayerSpec{{Type: "simple_rnn", Units: 5}}},
		"lstm 4x3 u5":           {InputShape: []int{4, 3}, Layers: []LayerSpec{{Type: "lstm", Units: 5}}},
		"lstm 4x3 u2 sequences": {InputShape: []int{4, 3}, Layers: []LayerSpec{{Type: "lstm", Units: 2, ReturnSequences: true}}},
	}
	if len(want) != len(cases) {
		t.Fatalf("%d references for %d cases", len(want), len(cases))
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			spec.Loss, spec.Optimizer = MeanSquaredError, OptimizerSpec{Name: "sgd", LearningRate: 0.1}
			spec.Dtype = "float64" // the references are exact; float32 is checked against float64 elsewhere
			m, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			for i := range m.Params() {
				m.Params()[i] = 0.5 * math.Sin(0.7*float64(i)+0.1)
			}
			x := make([]float64, 2*m.InputSize())
			for j := range x {
				x[j] = 0.8 * math.Cos(0.3*float64(j))
			}
			got := m.Predict(x, 2)
			ref := want[name]
			if len(got) != len(ref) {
				t.Fatalf("%d outputs, reference %d", len(got), len(ref))
			}
			for i := range got {
				if math.Abs(got[i]-ref[i]) > 1e-12 {
					t.Fatalf("output %d: %v, reference %v", i, got[i], ref[i])
				}
			}
		})
	}
}

// TestConvFloat32MatchesFloat64 runs a convolution stack in float32 (the
// default) and float64 on the same parameters and batch: outputs, loss and
// every gradient agree to float32's precision.
func TestConvFloat32MatchesFloat64(t *testing.T) {
	build := func(dtype string) *Model {
		spec := Spec{InputShape: []int{9, 8, 3}, Layers: []LayerSpec{
			{Type: "conv2d", Filters: 20, KernelSize: Pair{3, 3}, Padding: "same", Activation: "tanh", Dtype: dtype},
			{Type: "max_pooling2d"},
			{Type: "conv2d", Filters: 17, KernelSize: Pair{2, 3}, Strides: Pair{2, 1}, Activation: "relu", Dtype: dtype},
			{Type: "conv2d", Filters: 8, KernelSize: Pair{1, 2}, Dtype: dtype}, // linear
			{Type: "flatten"}, {Type: "dense", Units: 5, Activation: "softmax"},
		}, Loss: SparseCategoricalCrossentropy, Optimizer: OptimizerSpec{Name: "sgd", LearningRate: 0.1}, Dtype: dtype}
		m, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		m.Initialize(4)
		return m
	}
	double := build("float64")
	double.SetParams(paramsOf(build("float32"))) // the same float32 values
	r := rand.New(rand.NewPCG(5, 6))
	b := randomBatch(double, 13, false, r)
	lossD := double.ComputeGradients(b, 0)
	var norm float64
	for _, g := range gradsOf(double) {
		norm = max(norm, math.Abs(g))
	}
	// The whole batch at once, then one sample, then five at a time.
	for _, chunk := range []int{0, 1, 5} {
		single := build("float32")
		for _, l := range single.layers {
			if c, ok := l.(*conv2d); ok && chunk > 0 {
				c.chunkBytes = chunk * 4 * c.oh * c.ow * c.patch()
			}
		}
		lossS := single.ComputeGradients(b, 0)
		if math.Abs(lossS-lossD) > 1e-5*math.Abs(lossD) {
			t.Fatalf("chunks of %d: loss %v in float32, %v in float64", chunk, lossS, lossD)
		}
		var worst float64
		for i, g := range gradsOf(single) {
			worst = max(worst, math.Abs(g-double.Grads()[i]))
		}
		t.Logf("chunks of %d samples: largest gradient difference %.2g, largest gradient %.2g", chunk, worst, norm)
		if worst > 1e-5*norm {
			t.Fatalf("chunks of %d: float32 gradients differ from float64 by up to %.2g (largest gradient %.2g)", chunk, worst, norm)
		}
	}
}
