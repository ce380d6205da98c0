package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPruneKeepsTheLargestWeights prunes the Keras example to 75%: each
// kernel loses exactly its smallest three quarters, biases are untouched.
func TestPruneKeepsTheLargestWeights(t *testing.T) {
	m, err := New(KerasMNIST())
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(2)
	before := paramsOf(m)
	var original [][]float64
	for _, k := range m.kernels() {
		original = append(original, slices.Clone(k))
	}
	m.Prune(0.75)
	for li, k := range m.kernels() {
		zeros, largestPruned, smallestKept := 0, 0.0, math.Inf(1)
		for i, v := range k {
			if v == 0 {
				zeros++
				largestPruned = max(largestPruned, math.Abs(original[li][i]))
			} else {
				smallestKept = min(smallestKept, math.Abs(v))
			}
		}
		if want := int(0.75 * float64(len(k))); zeros != want {
			t.Fatalf("kernel %d: %d zeros of %d, want %d", li, zeros, len(k), want)
		}
		if largestPruned > smallestKept {
			t.Fatalf("kernel %d: pruned a weight of magnitude %v but kept one of %v", li, largestPruned, smallestKept)
		}
	}
	for i, v := range paramsOf(m) {
		if v != 0 && v != before[i] {
			t.Fatalf("parameter %d changed from %v to %v", i, before[i], v)
		}
	}
	if s := m.Sparsity(); math.Abs(s-0.75) > 0.001 {
		t.Fatalf("sparsity %v, want 0.75", s)
	}
}

// TestPruningScheduleDuringFit trains the Keras example with gradual
// pruning to 80% between steps 5 and 25, every 5 steps (five pruning
// events, four Adam updates between two): the sparsity follows the cubic
// schedule, zeros stay zero through the optimiser's updates, and the final
// sparsity holds to the end, 13 updates later.
func TestPruningScheduleDuringFit(t *testing.T) {
	spec := KerasMNIST()
	const begin, end, every = 5, 25, 5
	spec.Pruning = &PruningSpec{Sparsity: 0.8, BeginStep: begin, EndStep: end, Frequency: every}
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(3)
	r := rand.New(rand.NewPCG(4, 5))
	b := randomBatch(m, 16, false, r)
	var prevZeros []bool
	for step := 0; step < end+13; step++ {
		m.ComputeGradients(b, uint64(step))
		m.ApplyGradients()
		s := m.Sparsity()
		want := 0.0
		if step >= begin {
			last := min(begin+(step-begin)/every*every, end)
			want = 0.8 * (1 - math.Pow(1-float64(last-begin)/(end-begin), 3))
		}
		if math.Abs(s-want) > 0.002 {
			t.Fatalf("after update %d: sparsity %.4f, want %.4f", step, s, want)
		}
		// Weights pruned once stay zero.
		zeros := make([]bool, m.NumParams())
		for i, v := range paramsOf(m) {
			zeros[i] = v == 0
			if step > begin && prevZeros[i] && !zeros[i] {
				t.Fatalf("update %d revived pruned parameter %d", step, i)
			}
		}
		prevZeros = zeros
	}
}

func TestPruningSpecValidation(t *testing.T) {
	for _, p := range []PruningSpec{{Sparsity: 0}, {Sparsity: 1}, {Sparsity: 0.5, BeginStep: -1}, {Sparsity: 0.5, Frequency: -2}} {
		spec := KerasMNIST()
		spec.Pruning = &p
		if _, err := New(spec); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

// TestPruningCoversRecurrentKernels prunes a float32 (the default) and a
// float64 model with recurrent layers: their input and recurrent kernels
// are pruned and counted like a dense layer's, whatever the dtype.
func TestPruningCoversRecurrentKernels(t *testing.T) {
	for _, dtype := range []string{"", "float64"} {
		spec := Spec{InputShape: []int{12, 6}, Dtype: dtype, Layers: []LayerSpec{
			{Type: "lstm", Units: 8, ReturnSequences: true},
			{Type: "simple_rnn", Units: 5},
			{Type: "dense", Units: 3, Activation: "softmax"}},
			Loss: SparseCategoricalCrossentropy, Optimizer: mustOptimizer(t, "adam")}
		m, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		m.Initialize(4)
		// lstm: 6×32 and 8×32; simple_rnn: 8×5 and 5×5; dense: 5×3.
		want := []int{6 * 32, 8 * 32, 8 * 5, 5 * 5, 5 * 3}
		ks := m.kernels()
		if len(ks) != len(want) {
			t.Fatalf("dtype %q: %d kernels, want %d", dtype, len(ks), len(want))
		}
		m.Prune(0.5)
		for i, k := range m.kernels() {
			if len(k) != want[i] {
				t.Fatalf("dtype %q: kernel %d has %d values, want %d", dtype, i, len(k), want[i])
			}
			if zeros := countZeros(k); zeros != want[i]/2 {
				t.Fatalf("dtype %q: kernel %d has %d zeros of %d after pruning to 50%%", dtype, i, zeros, len(k))
			}
		}
		if s := m.Sparsity(); math.Abs(s-0.5) > 0.01 {
			t.Fatalf("dtype %q: sparsity %v, want 0.5", dtype, s)
		}
	}
}
