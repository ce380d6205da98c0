package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestFloat32MatchesFloat64 checks the float32 products of wide dense
// layers and of recurrent layers against the float64 ones, which the
// finite-difference checks verify: same parameters, same batch, loss and
// gradients within float32 rounding, and not bit-identical (the float32
// path ran).
func TestFloat32MatchesFloat64(t *testing.T) {
	noBias := false
	cases := []struct {
		name   string
		layers []LayerSpec
		loss   string
	}{
		{"relu/softmax+sparse_ce", []LayerSpec{
			{Type: "dense", Units: 96, Activation: "relu"},
			{Type: "dense", Units: 80, Activation: "relu"},
			{Type: "dense", Units: 64, Activation: "softmax"}}, SparseCategoricalCrossentropy},
		{"sigmoid-tanh-linear/mse", []LayerSpec{
			{Type: "dense", Units: 70, Activation: "sigmoid"},
			{Type: "dense", Units: 65, Activation: "tanh", UseBias: &noBias},
			{Type: "dense", Units: 64}}, MeanSquaredError},
		{"softmax layer (unfused)", []LayerSpec{
			{Type: "dense", Units: 100, Activation: "relu"},
			{Type: "dense", Units: 64},
			{Type: "activation", Activation: "softmax"}}, CategoricalCrossentropy},
		{"stacked lstm with dropout", []LayerSpec{
			{Type: "reshape", TargetShape: []int{37, 1}},
			{Type: "lstm", Units: 12, ReturnSequences: true, Dropout: 0.2, RecurrentDropout: 0.3},
			{Type: "lstm", Units: 9},
			{Type: "dense", Units: 64, Activation: "softmax"}}, SparseCategoricalCrossentropy},
		{"simple_rnn sequences, no bias", []LayerSpec{
			{Type: "reshape", TargetShape: []int{37, 1}},
			{Type: "simple_rnn", Units: 7, ReturnSequences: true, UseBias: &noBias},
			{Type: "flatten"},
			{Type: "dense", Units: 64}}, MeanSquaredError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := Spec{InputShape: []int{37}, Layers: c.layers, Loss: c.loss, Optimizer: mustOptimizer(t, "sgd")}
			m32, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			spec.Dtype = "float64"
			m64, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			m64.Initialize(3)
			// Both from the same float32 values.
			m32.SetParams(m64.Params())
			m64.SetParams(paramsOf(m32))
			m32.SetSeed(3) // the same dropout masks
			b := randomBatch(m64, 13, c.loss != SparseCategoricalCrossentropy, rand.New(rand.NewPCG(1, 2)))
			// Columns zero in every row, which a first dense layer
			// leaves out of its product.
			for r := range b.Rows {
				clear(b.X[r*37 : r*37+9])
			}
			l64 := m64.ComputeGradients(b, 0)
			l32 := m32.ComputeGradients(b, 0)
			if math.Abs(l32-l64) > 1e-5*math.Abs(l64) {
				t.Fatalf("loss %v in float32, %v in float64", l32, l64)
			}
			var scale float64
			for _, g := range m64.Grads() {
				scale = math.Max(scale, math.Abs(g))
			}
			same := true
			g32 := gradsOf(m32)
			for i, g := range m64.Grads() {
				if d := math.Abs(g32[i] - g); d > 1e-5*scale {
					t.Fatalf("gradient %d: %v in float32, %v in float64 (largest %v)", i, g32[i], g, scale)
				}
				same = same && g32[i] == g
			}
			if same {
				t.Fatal("float32 gradients are bit-identical to float64: the float32 path did not run")
			}
		})
	}
}

// TestWideSparseInputMatchesDense is TestSparseInputMatchesDense for a
// model wide enough to compute in float32.
func TestWideSparseInputMatchesDense(t *testing.T) {
	m, err := New(mlp(128))
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(5)
	data := loadTrain(t)
	ids := []int{3, 1, 4, 1, 5, 9, 2, 6}
	sparse := &Batch{Labels: make([]int, len(ids))}
	Gather(data, ids, sparse)
	dense := &Batch{Rows: len(ids), X: make([]float64, len(ids)*784), Labels: make([]int, len(ids))}
	data.Gather(ids, dense.X, dense.Labels)
	lossSparse := m.ComputeGradients(sparse, 0)
	gSparse := gradsOf(m)
	if lossDense := m.ComputeGradients(dense, 0); lossSparse != lossDense {
		t.Fatalf("loss %v sparse, %v dense", lossSparse, lossDense)
	}
	for i, g := range gradsOf(m) {
		if g != gSparse[i] {
			t.Fatalf("gradient %d: %v sparse, %v dense", i, gSparse[i], g)
		}
	}
}

func TestDtypeIsValidated(t *testing.T) {
	spec := mlp(64)
	spec.Dtype = "float16"
	if err := spec.Validate(); err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Fatalf("model dtype float16: %v, want an error naming dtype", err)
	}
	spec.Dtype = "float64"
	spec.Layers[0].Dtype = "float32"
	if err := spec.Validate(); err != nil {
		t.Fatalf("a dense layer's own dtype: %v", err)
	}
	if _, err := ParseSpec(spec.JSON()); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

func mustOptimizer(t *testing.T, name string) OptimizerSpec {
	t.Helper()
	o, err := DefaultOptimizer(name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestDenseComputesOnFloat32Buffers: in a float32 model the dense,
// conv2d and recurrent layers computing in float32 work on the model's float32 buffers
// (no float64 shadow), the narrow first layer of the Keras example
// excepted; a write to Params32 is what the next forward pass uses.
func TestDenseComputesOnFloat32Buffers(t *testing.T) {
	for _, c := range []struct {
		spec    Spec
		bridged []bool
	}{
		{mlp(512, 512), []bool{false, false, false}},
		{KerasMNIST(), []bool{false, false, false}},
		{func() Spec { s := mlp(32, 16); s.Layers[1].Dtype = "float64"; return s }(), []bool{false, true, false}},
		{Spec{InputShape: []int{28, 28, 1}, Layers: []LayerSpec{
			{Type: "conv2d", Filters: 4, KernelSize: Pair{3, 3}, Activation: "relu"},
			{Type: "max_pooling2d"},
			{Type: "conv2d", Filters: 4, KernelSize: Pair{3, 3}, Activation: "tanh"},
			{Type: "flatten"}, {Type: "dense", Units: 10, Activation: "softmax"},
		}, Loss: SparseCategoricalCrossentropy, Optimizer: OptimizerSpec{Name: "sgd", LearningRate: 0.1}},
			[]bool{false, false, false, false, false}},
		{Spec{InputShape: []int{784}, Layers: []LayerSpec{
			{Type: "reshape", TargetShape: []int{28, 28}},
			{Type: "lstm", Units: 8, ReturnSequences: true},
			{Type: "simple_rnn", Units: 6},
			{Type: "dense", Units: 10, Activation: "softmax"},
		}, Loss: SparseCategoricalCrossentropy, Optimizer: OptimizerSpec{Name: "sgd", LearningRate: 0.1}},
			[]bool{false, false, false, false}},
	} {
		m, err := New(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.bridged, c.bridged) {
			t.Fatalf("%s: bridged layers %v, want %v", c.spec.Summary(), m.bridged, c.bridged)
		}
		m.Initialize(1)
		x := make([]float64, 2*m.InputSize())
		for i := range x {
			x[i] = float64(i%5) / 5
		}
		before := m.Predict(x, 2)
		clear(m.Params32()) // every kernel and bias zero: uniform outputs
		after := m.Predict(x, 2)
		if slices.Equal(before, after) {
			t.Fatalf("%s: zeroing Params32 did not change the outputs", c.spec.Summary())
		}
		for _, p := range after {
			if math.Abs(p-0.1) > 1e-7 {
				t.Fatalf("%s: output %v with every parameter zero, want 0.1", c.spec.Summary(), p)
			}
		}
	}
}

// TestRecurrentRegularizesItsKernel: a recurrent layer's kernel
// regulariser covers its input kernel, and nothing else, in a float32
// model, whose native layers have no float64 views to measure it by.
func TestRecurrentRegularizesItsKernel(t *testing.T) {
	spec := Spec{InputShape: []int{784}, Layers: []LayerSpec{
		{Type: "reshape", TargetShape: []int{28, 28}},
		{Type: "lstm", Units: 8, KernelRegularizer: &Regularizer{L2: 0.5}},
		{Type: "dense", Units: 10, Activation: "softmax"},
	}, Loss: SparseCategoricalCrossentropy, Optimizer: OptimizerSpec{Name: "sgd", LearningRate: 0.1}}
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(1)
	var want float64
	for _, v := range m.Params32()[:28*4*8] { // the input kernel, 28×32
		want += 0.5 * float64(v) * float64(v)
	}
	if got := m.penalties(); got != want {
		t.Fatalf("penalty %v, want %v (L2 of the input kernel)", got, want)
	}
}

// TestFloat32LayerOfFloat64Model: a float64 model may make its layers
// float32 one by one (TestDtypeIsValidated), the narrow first layer of
// the Keras example included; such a model trains (its float32 layer
// computes on copies, having no float32 buffers to compute on) and its
// loss and gradients stay close to the all-float64 model's.
func TestFloat32LayerOfFloat64Model(t *testing.T) {
	spec := KerasMNIST()
	spec.Dtype = "float64"
	all64, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Layers[0].Dtype = "float32"
	mixed, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	all64.Initialize(9)
	mixed.Initialize(9)
	r := rand.New(rand.NewPCG(3, 4))
	b := randomBatch(mixed, 16, false, r)
	want := all64.ComputeGradients(b, 0)
	got := mixed.ComputeGradients(b, 0)
	if math.Abs(got-want) > 1e-4*math.Abs(want) {
		t.Fatalf("loss %v with a float32 first layer, %v in float64", got, want)
	}
	g64, gmix := all64.Grads(), mixed.Grads()
	for i := range g64 {
		if math.Abs(gmix[i]-g64[i]) > 1e-4+1e-3*math.Abs(g64[i]) {
			t.Fatalf("gradient %d: %v with a float32 first layer, %v in float64", i, gmix[i], g64[i])
		}
	}
	mixed.ApplyGradients()
	if y := mixed.Predict(b.X, b.Rows); len(y) != 16*10 || math.IsNaN(y[0]) {
		t.Fatalf("prediction after a step: %d values, first %v", len(y), y[0])
	}
}

// TestNoBiasLayerStaysWithoutBias: a backward pass through dense layers
// without bias leaves their outputs as they were (a float32 layer once
// summed its discarded bias gradient into the zeros its forward pass adds
// as bias), for narrow and wide layers in both dtypes.
func TestNoBiasLayerStaysWithoutBias(t *testing.T) {
	noBias := false
	for _, units := range []int{10, 70} {
		for _, dtype := range []string{"float32", "float64"} {
			t.Run(fmt.Sprintf("units=%d/%s", units, dtype), func(t *testing.T) {
				spec := smallSpec()
				spec.Dtype = dtype
				for i := range spec.Layers {
					spec.Layers[i].UseBias = &noBias
				}
				spec.Layers[0].Units = units
				m, err := New(spec)
				if err != nil {
					t.Fatal(err)
				}
				m.Initialize(3)
				b := randomBatch(m, 8, false, rand.New(rand.NewPCG(1, 1)))
				before := m.Predict(b.X, b.Rows)
				m.ComputeGradients(b, 0)
				if after := m.Predict(b.X, b.Rows); !sameBits(before, after) {
					t.Fatalf("outputs changed by a backward pass: %v then %v", before[:3], after[:3])
				}
			})
		}
	}
}
