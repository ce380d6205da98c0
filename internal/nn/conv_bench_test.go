package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// convBenchCases are the convolutions of examples/cnn.json at batch 32.
var convBenchCases = []struct {
	name   string
	in     []int
	filter int
}{
	{"28x28x1-32", []int{28, 28, 1}, 32},
	{"13x13x32-64", []int{13, 13, 32}, 64},
}

// BenchmarkConv2D measures a convolution's forward and backward pass (with
// the input gradient), linear, at batch 32 and 128, reporting samples per
// second and the rate of the three matrix products' arithmetic. Compare
// with PyTorch side by side: sh bench/compare.sh conv.
func BenchmarkConv2D(b *testing.B) {
	for _, c := range convBenchCases {
		for _, rows := range []int{32, 128} {
			benchConv(b, c.name, c.in, c.filter, rows)
		}
	}
}

func benchConv(b *testing.B, name string, in []int, filters, rows int) {
	b.Run(fmt.Sprintf("%s/batch=%d", name, rows), func(b *testing.B) {
		l := newConv2D(in, LayerSpec{Type: "conv2d", Filters: filters, KernelSize: Pair{3, 3}})
		params := make([]float64, l.numParams())
		grads := make([]float64, l.numParams())
		l.bind(params, grads)
		r := rand.New(rand.NewPCG(1, 2))
		l.initialize(r, params)
		x := make([]float64, rows*in[0]*in[1]*in[2])
		for i := range x {
			x[i] = r.Float64()
		}
		dy := make([]float64, rows*l.outputSize())
		for i := range dy {
			dy[i] = r.NormFloat64()
		}
		b.ResetTimer()
		for range b.N {
			l.forward(x, rows, &pass{})
			l.backward(dy, rows, true)
		}
		flops := 3 * 2 * float64(rows*l.oh*l.ow*l.patch()*l.filters)
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "samples/s")
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

// BenchmarkCNNStep is a training step of examples/cnn.json's model at
// batch 32: forward, backward, Adam.
func BenchmarkCNNStep(b *testing.B) {
	spec := Spec{InputShape: []int{28, 28, 1}, Layers: []LayerSpec{
		{Type: "conv2d", Filters: 32, KernelSize: Pair{3, 3}, Activation: "relu"}, {Type: "max_pooling2d"},
		{Type: "conv2d", Filters: 64, KernelSize: Pair{3, 3}, Activation: "relu"}, {Type: "max_pooling2d"},
		{Type: "flatten"}, {Type: "dense", Units: 128, Activation: "relu"}, {Type: "dense", Units: 10, Activation: "softmax"},
	}, Loss: SparseCategoricalCrossentropy, Optimizer: OptimizerSpec{Name: "adam", LearningRate: 0.001, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}}
	m, err := New(spec)
	if err != nil {
		b.Fatal(err)
	}
	m.Initialize(1)
	batch := randomBatch(m, 32, false, rand.New(rand.NewPCG(3, 4)))
	b.ResetTimer()
	for i := range b.N {
		m.ComputeGradients(batch, uint64(i))
		m.ApplyGradients()
	}
	b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkIm2col measures laying out the windows of the CNN's two
// convolutions at batch 32, in float32, in values per second.
func BenchmarkIm2col(b *testing.B) {
	for _, c := range convBenchCases {
		b.Run(c.name, func(b *testing.B) {
			l := newConv2D(c.in, LayerSpec{Type: "conv2d", Filters: c.filter, KernelSize: Pair{3, 3}})
			const rows = 32
			x := make([]float32, rows*c.in[0]*c.in[1]*c.in[2])
			col := make([]float32, rows*l.oh*l.ow*l.patch())
			cpu := cpuSeconds()
			for range b.N {
				im2col(&l.window, x, rows, col)
			}
			n := float64(len(col) * b.N)
			b.ReportMetric(n/b.Elapsed().Seconds()/1e9, "Gvalues/s")
			if cpu := cpuSeconds() - cpu; cpu > 0 {
				b.ReportMetric(n/cpu/1e9, "Gvalues/cpu-s")
			}
		})
	}
}
