package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// source32 is a float32 layer whose output is set by the test.
type source32 struct {
	reshape
	y []float32
}

func (s *source32) output32() []float32 { return s.y }

// TestMaxPoolFloat32MatchesFloat64 pools the same values, with ties and
// zeros of both signs, in float32 (fed by a float32 layer; the vectorised
// 2×2 path and the general one) and in float64 (whose gradient the
// finite-difference checks verify): the maxima and the gradients' places
// agree exactly.
func TestMaxPoolFloat32MatchesFloat64(t *testing.T) {
	cases := []struct {
		name          string
		in            []int
		size, strides Pair
		padding       string
	}{
		{"2x2 channels of 8, odd rows and columns left over", []int{7, 9, 16}, nil, nil, ""},
		{"2x2 three channels", []int{6, 6, 3}, nil, nil, ""},
		{"2x2 same, odd", []int{5, 5, 8}, nil, nil, "same"},
		{"3x3 stride 2 same", []int{7, 6, 8}, Pair{3, 3}, Pair{2, 2}, "same"},
		{"2x2 stride 1 overlapping", []int{5, 4, 8}, nil, Pair{1, 1}, "valid"},
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := LayerSpec{Type: "max_pooling2d", PoolSize: c.size, Strides: c.strides, Padding: c.padding}
			p64, p32 := newMaxPool2D(c.in, spec), newMaxPool2D(c.in, spec)
			const rows = 3
			n := rows * c.in[0] * c.in[1] * c.in[2]
			src := &source32{y: make([]float32, n)}
			p32.link(src, nil)
			x := make([]float64, n)
			for i := range x {
				// Few distinct values: many ties, and −0 beside 0.
				v := float64(r.IntN(7)-3) / 2
				if v == 0 && r.IntN(2) == 0 {
					v = math.Copysign(0, -1)
				}
				x[i], src.y[i] = v, float32(v)
			}
			y64 := p64.forward(x, rows, &pass{})
			y32 := p32.forward(nil, rows, &pass{})
			for i := range y64 {
				if y64[i] != y32[i] || math.Signbit(y64[i]) != math.Signbit(y32[i]) {
					t.Fatalf("output %d: %v in float64, %v in float32", i, y64[i], y32[i])
				}
			}
			dy := make([]float64, len(y64))
			for i := range dy {
				dy[i] = float64(r.IntN(16)+1) / 8 // exact sums in both
			}
			dx64 := p64.backward(dy, rows, true)
			if got := p32.backward(dy, rows, true); got != nil {
				t.Fatal("a pooling layer linked to its float32 predecessor returned a float64 gradient")
			}
			dx32 := p32.inputGrad32()
			for i := range dx64 {
				if dx64[i] != float64(dx32[i]) {
					t.Fatalf("input gradient %d: %v in float64, %v in float32", i, dx64[i], dx32[i])
				}
			}
		})
	}
}

// TestCNNStaysFloat32 checks that examples/cnn.json's layers hand each
// other float32 values from the first convolution to the output layer,
// through the flatten and the hidden dense layer, with no float64 copy
// between them.
func TestCNNStaysFloat32(t *testing.T) {
	spec := Spec{InputShape: []int{28, 28, 1}, Layers: []LayerSpec{
		{Type: "conv2d", Filters: 32, KernelSize: Pair{3, 3}, Activation: "relu"}, {Type: "max_pooling2d"},
		{Type: "conv2d", Filters: 64, KernelSize: Pair{3, 3}, Activation: "relu"}, {Type: "max_pooling2d"},
		{Type: "flatten"}, {Type: "dense", Units: 128, Activation: "relu"}, {Type: "dense", Units: 10, Activation: "softmax"},
	}, Loss: SparseCategoricalCrossentropy, Optimizer: OptimizerSpec{Name: "sgd", LearningRate: 0.1}}
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(1)
	m.ComputeGradients(randomBatch(m, 4, false, rand.New(rand.NewPCG(1, 2))), 0)
	c1, p1, c2, p2, f := m.layers[0].(*conv2d), m.layers[1].(*maxPool2D), m.layers[2].(*conv2d), m.layers[3].(*maxPool2D), m.layers[4].(*reshape)
	for i, l := range []float32Layer{c1, p1, c2, p2} {
		if l.output32() == nil {
			t.Errorf("layer %d has no float32 output", i)
		}
	}
	if c1.y != nil || p1.y != nil || c2.y != nil || c2.dx != nil || p2.y != nil {
		t.Error("a float64 copy of an output or gradient between float32 layers")
	}
	if f.y != nil || f.dx32 != nil {
		t.Error("the flatten converted between the float32 pooling and the float32 dense layer")
	}
	if d := m.layers[5].(*dense); d.y != nil || d.dx != nil || d.output32() == nil {
		t.Error("the hidden dense layer made a float64 copy of its output or gradient")
	}
	in32, out32 := links32Of(spec)
	for i := range spec.Layers {
		l, ok := m.layers[i].(float32Layer)
		var prev, next float32Layer
		if ok {
			prev, next = linksOf(l)
		}
		if (prev != nil) != in32[i] || (next != nil) != out32[i] {
			t.Errorf("layer %d: linked from %v to %v, the footprint's links say %v, %v", i, prev != nil, next != nil, in32[i], out32[i])
		}
	}
}

func linksOf(l float32Layer) (prev, next float32Layer) {
	switch l := l.(type) {
	case *conv2d:
		return l.prev, l.next
	case *maxPool2D:
		return l.prev, l.next
	case *reshape:
		return l.prev, l.next
	case *dense:
		return l.prev, l.next
	}
	return nil, nil
}
