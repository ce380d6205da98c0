package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gradCheckCase is a small model and batch whose analytic gradient is
// compared with central finite differences.
type gradCheckCase struct {
	name    string
	spec    Spec
	targets bool // dense target distributions instead of labels
}

func denseLayer(units int, act string) LayerSpec {
	return LayerSpec{Type: "dense", Units: units, Activation: act}
}

func gradCheckCases() []gradCheckCase {
	sgd := OptimizerSpec{Name: "sgd", LearningRate: 0.01}
	spec := func(loss string, layers ...LayerSpec) Spec {
		return Spec{InputShape: []int{6}, Layers: layers, Loss: loss, Optimizer: sgd}
	}
	noBias := false
	reg := func(l LayerSpec, k, b *Regularizer) LayerSpec {
		l.KernelRegularizer, l.BiasRegularizer = k, b
		return l
	}
	cases := []gradCheckCase{
		{name: "linear/mse", spec: spec(MeanSquaredError, denseLayer(4, "linear"))},
		{name: "relu-sigmoid-tanh/softmax+sparse_ce", spec: spec(SparseCategoricalCrossentropy,
			denseLayer(5, "relu"), denseLayer(5, "sigmoid"), denseLayer(5, "tanh"), denseLayer(4, "softmax"))},
		{name: "softmax+categorical_ce/targets", targets: true, spec: spec(CategoricalCrossentropy,
			denseLayer(5, "tanh"), denseLayer(4, "softmax"))},
		{name: "softmax layer (unfused)+sparse_ce", spec: spec(SparseCategoricalCrossentropy,
			denseLayer(5, "tanh"), denseLayer(4, "linear"), LayerSpec{Type: "activation", Activation: "softmax"})},
		{name: "softmax layer (unfused)+categorical_ce", spec: spec(CategoricalCrossentropy,
			denseLayer(5, "sigmoid"), denseLayer(4, "linear"), LayerSpec{Type: "activation", Activation: "softmax"})},
		{name: "sigmoid+categorical_ce (normalised)", targets: true, spec: spec(CategoricalCrossentropy,
			denseLayer(5, "tanh"), denseLayer(4, "sigmoid"))},
		{name: "sigmoid/mse", spec: spec(MeanSquaredError, denseLayer(5, "relu"), denseLayer(4, "sigmoid"))},
		{name: "tanh activation layer/mse", spec: spec(MeanSquaredError, denseLayer(4, "linear"), LayerSpec{Type: "activation", Activation: "tanh"})},
		{name: "no bias", spec: spec(SparseCategoricalCrossentropy,
			LayerSpec{Type: "dense", Units: 5, Activation: "tanh", UseBias: &noBias}, denseLayer(4, "softmax"))},
		{name: "l1 l2 l1_l2 regularizers", spec: spec(SparseCategoricalCrossentropy,
			reg(denseLayer(5, "tanh"), &Regularizer{L1: 0.01}, &Regularizer{L2: 0.02}),
			reg(denseLayer(4, "softmax"), &Regularizer{L1: 0.03, L2: 0.04}, &Regularizer{L1: 0.05, L2: 0.06}))},
		{name: "dropout", spec: spec(SparseCategoricalCrossentropy,
			denseLayer(8, "tanh"), LayerSpec{Type: "dropout", Rate: 0.5}, denseLayer(4, "softmax"))},
		{name: "step (zero gradient)", spec: spec(MeanSquaredError, denseLayer(5, "step"), denseLayer(4, "linear"))},
	}
	shaped := func(shape []int, layers ...LayerSpec) Spec {
		return Spec{InputShape: shape, Layers: layers, Loss: SparseCategoricalCrossentropy, Optimizer: sgd}
	}
	// Convolutions in float64: float32 products are checked against these
	// in TestConvFloat32MatchesFloat64.
	conv := func(filters int, kernel, strides Pair, padding, act string) LayerSpec {
		return LayerSpec{Type: "conv2d", Filters: filters, KernelSize: kernel, Strides: strides, Padding: padding, Activation: act, Dtype: "float64"}
	}
	flatten := LayerSpec{Type: "flatten"}
	rnn := func(typ string, units int, seq bool, drop, recDrop float64) LayerSpec {
		return LayerSpec{Type: typ, Units: units, ReturnSequences: seq, Dropout: drop, RecurrentDropout: recDrop}
	}
	return append(cases,
		gradCheckCase{name: "conv2d valid", spec: shaped([]int{5, 5, 2}, conv(3, Pair{3, 3}, nil, "", "tanh"), flatten, denseLayer(4, "softmax"))},
		gradCheckCase{name: "conv2d same stride 2 (odd padding)", spec: shaped([]int{6, 5, 2},
			conv(3, Pair{3, 2}, Pair{2, 2}, "same", "sigmoid"), conv(2, Pair{2, 2}, nil, "same", "tanh"), flatten, denseLayer(4, "softmax"))},
		gradCheckCase{name: "conv2d regularised, no bias", spec: shaped([]int{4, 4, 1},
			reg(LayerSpec{Type: "conv2d", Filters: 2, KernelSize: Pair{2, 2}, UseBias: &noBias, Activation: "tanh", Dtype: "float64"}, &Regularizer{L1: 0.01, L2: 0.02}, nil),
			flatten, denseLayer(3, "softmax"))},
		gradCheckCase{name: "max_pooling2d valid and same", spec: shaped([]int{6, 6, 2},
			conv(3, Pair{3, 3}, nil, "same", "tanh"), LayerSpec{Type: "max_pooling2d"},
			LayerSpec{Type: "max_pooling2d", PoolSize: Pair{2, 2}, Strides: Pair{1, 1}, Padding: "same"}, flatten, denseLayer(4, "softmax"))},
		gradCheckCase{name: "reshape + simple_rnn", spec: shaped([]int{12},
			LayerSpec{Type: "reshape", TargetShape: []int{3, 4}}, rnn("simple_rnn", 5, false, 0, 0), denseLayer(4, "softmax"))},
		gradCheckCase{name: "simple_rnn sequences + dropout", spec: shaped([]int{4, 3},
			rnn("simple_rnn", 5, true, 0.3, 0.4), flatten, denseLayer(4, "softmax"))},
		gradCheckCase{name: "lstm", spec: shaped([]int{4, 3}, rnn("lstm", 5, false, 0, 0), denseLayer(4, "softmax"))},
		gradCheckCase{name: "lstm dropout + recurrent dropout", spec: shaped([]int{5, 3}, rnn("lstm", 4, false, 0.3, 0.3), denseLayer(4, "softmax"))},
		gradCheckCase{name: "stacked lstm, regularised", spec: shaped([]int{4, 3},
			func() LayerSpec {
				l := rnn("lstm", 4, true, 0, 0)
				l.KernelRegularizer, l.RecurrentRegularizer, l.BiasRegularizer = &Regularizer{L2: 0.01}, &Regularizer{L1: 0.02}, &Regularizer{L2: 0.03}
				return l
			}(), rnn("lstm", 3, false, 0, 0), denseLayer(4, "softmax"))},
		gradCheckCase{name: "lstm sigmoid, tanh gates", spec: shaped([]int{3, 3},
			LayerSpec{Type: "lstm", Units: 3, Activation: "sigmoid", RecurrentActivation: "tanh"}, denseLayer(4, "softmax"))},
	)
}

// randomBatch draws a batch of rows samples for a model.
func randomBatch(m *Model, rows int, targets bool, r *rand.Rand) *Batch {
	b := &Batch{Rows: rows, X: make([]float64, rows*m.InputSize()), Labels: make([]int, rows), IDs: make([]int, rows)}
	for i := range b.X {
		b.X[i] = r.NormFloat64()
	}
	out := m.OutputSize()
	for i := range b.Labels {
		b.Labels[i] = r.IntN(out)
		b.IDs[i] = 100 + i
	}
	if targets {
		b.Targets = make([]float64, rows*out)
		for i := 0; i < rows; i++ {
			var s float64
			for j := 0; j < out; j++ {
				v := r.Float64()
				b.Targets[i*out+j] = v
				s += v
			}
			for j := 0; j < out; j++ {
				b.Targets[i*out+j] /= s
			}
		}
	}
	return b
}

// TestGradientsMatchFiniteDifferences checks every layer, activation, loss
// and regulariser against central differences: relative error below 1e-6,
// in float64 (the float32 products are checked against these in
// TestFloat32MatchesFloat64).
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	for _, c := range gradCheckCases() {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Dtype = "float64"
			m, err := New(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			m.Initialize(3)
			// Non-zero biases, so that bias gradients and penalties are
			// exercised away from 0.
			for i := range m.Params() {
				m.Params()[i] += 0.1 * r.NormFloat64()
			}
			b := randomBatch(m, 7, c.targets, r)
			checkGradients(t, m, b)
		})
	}
}

func checkGradients(t *testing.T, m *Model, b *Batch) {
	t.Helper()
	const step = 7
	m.ComputeGradients(b, step)
	analytic := gradsOf(m)
	params := m.Params()
	const h = 1e-5
	worst := 0.0
	for i := range params {
		orig := params[i]
		params[i] = orig + h
		up := m.ComputeGradients(b, step)
		params[i] = orig - h
		down := m.ComputeGradients(b, step)
		params[i] = orig
		numeric := (up - down) / (2 * h)
		scale := math.Max(math.Abs(numeric)+math.Abs(analytic[i]), 1e-6)
		rel := math.Abs(numeric-analytic[i]) / scale
		worst = math.Max(worst, rel)
		if rel > 1e-6 {
			t.Errorf("parameter %d: analytic %.10g, numeric %.10g, relative error %.2g", i, analytic[i], numeric, rel)
		}
	}
	t.Logf("worst relative error over %d parameters: %.2g", len(params), worst)
}

// TestSparseInputMatchesDense checks that sparse input rows give the same
// loss and gradients, bit for bit, as the same rows given densely.
func TestSparseInputMatchesDense(t *testing.T) {
	m, err := New(KerasMNIST())
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
	lossDense := m.ComputeGradients(dense, 0)
	if lossSparse != lossDense {
		t.Fatalf("loss %v sparse, %v dense", lossSparse, lossDense)
	}
	for i, g := range gradsOf(m) {
		if g != gSparse[i] {
			t.Fatalf("gradient %d: %v sparse, %v dense", i, gSparse[i], g)
		}
	}
}

func TestDropoutMasksFollowSampleIdentity(t *testing.T) {
	d := &dropout{width: 64, rate: 0.5, index: 1}
	x := make([]float64, 3*64)
	for i := range x {
		x[i] = 1
	}
	y := append([]float64(nil), d.forward(x, 3, &pass{train: true, seed: 9, step: 4, ids: []int{10, 11, 12}})...)
	// Sample 11 in row 0 of another batch gets the mask it had in row 1.
	y2 := d.forward(x[:64], 1, &pass{train: true, seed: 9, step: 4, ids: []int{11}})
	kept := 0
	for j := 0; j < 64; j++ {
		if y2[j] != y[64+j] {
			t.Fatalf("unit %d of sample 11: %v in one batch, %v in another", j, y2[j], y[64+j])
		}
		if y[j] != 0 {
			kept++
			if y[j] != 2 {
				t.Fatalf("kept value scaled to %v, want 2", y[j])
			}
		}
	}
	if kept < 16 || kept > 48 {
		t.Fatalf("kept %d of 64 at rate 0.5", kept)
	}
	if out := d.forward(x, 3, &pass{}); &out[0] != &x[0] {
		t.Fatal("dropout is not the identity in inference")
	}
}

func ExampleClasses() {
	probs := []float64{0.1, 0.7, 0.2, 0.6, 0.3, 0.1}
	fmt.Println(Classes(probs, 3))
	// Output: [1 0]
}

// TestSumGradientsSplit checks that summed gradients of two halves of a
// batch add up to the summed gradient of the whole, and that mean plus
// penalties is ComputeGradients.
func TestSumGradientsSplit(t *testing.T) {
	spec := gradCheckCases()[9].spec // with regularisers
	spec.Dtype = "float64"           // float32 products agree only to float32's rounding
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(4)
	r := rand.New(rand.NewPCG(5, 6))
	b := randomBatch(m, 6, false, r)
	half := func(lo, hi int) *Batch {
		w := m.InputSize()
		return &Batch{Rows: hi - lo, X: b.X[lo*w : hi*w], Labels: b.Labels[lo:hi], IDs: b.IDs[lo:hi]}
	}
	lossA := m.SumGradients(half(0, 3), 1)
	gA := gradsOf(m)
	lossB := m.SumGradients(half(3, 6), 1)
	for i := range gA {
		gA[i] += m.Grads()[i]
	}
	lossAll := m.SumGradients(b, 1)
	if math.Abs(lossA+lossB-lossAll) > 1e-12*math.Abs(lossAll) {
		t.Fatalf("split losses %v + %v, whole %v", lossA, lossB, lossAll)
	}
	for i, g := range gradsOf(m) {
		if math.Abs(gA[i]-g) > 1e-12*(1+math.Abs(g)) {
			t.Fatalf("gradient %d: halves sum to %v, whole %v", i, gA[i], g)
		}
	}
	mean := m.ComputeGradients(b, 1)
	want := lossAll/6 + m.AddPenaltiesValueForTest()
	if math.Abs(mean-want) > 1e-12 {
		t.Fatalf("ComputeGradients loss %v, want mean %v plus penalties", mean, want)
	}
}

// TestKeysSamples: only a model with dropout needs the batch's sample ids.
func TestKeysSamples(t *testing.T) {
	spec := KerasMNIST()
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	if m.KeysSamples() {
		t.Error("the Keras example (no dropout) says it keys samples")
	}
	spec.Layers = append(spec.Layers[:1], append([]LayerSpec{{Type: "dropout", Rate: 0.1}}, spec.Layers[1:]...)...)
	if m, err = New(spec); err != nil {
		t.Fatal(err)
	}
	if !m.KeysSamples() {
		t.Error("a model with dropout says it does not key samples")
	}
}
