package nn

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// heapAfterGC is the live heap. Two collections: buffers a sync.Pool
// held (an earlier pass's) survive the first in its victim cache, and
// would count in one reading and not the next.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// deepSpec is a model of n activation layers between MNIST's input and a
// softmax layer: few parameters, much memory per sample. Fifty layers
// keep tens of MiB at the test's batches, far above its MiB of slack;
// more only cost time (every activation element is checked under -race).
func deepSpec(n int) string {
	layers := strings.Repeat(`{"type": "activation", "activation": "relu"},`, n)
	return `{"input_shape": [784], "layers": [` + layers + `{"type": "dense", "units": 10, "activation": "softmax"}],
		"loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`
}

// TestFootprintBoundsTheHeap trains one step and evaluates once with models
// of every kind of layer and compares the heap the pass leaves allocated
// (the model, its buffers and the batch) with EstimateFootprint: the
// estimate is never below it (less 1 MiB of measurement noise), and at most
// three times it (plus 2 MiB).
func TestFootprintBoundsTheHeap(t *testing.T) {
	for name, js := range map[string]string{
		"keras":       string(KerasMNIST().JSON()),
		"deep":        deepSpec(50),
		"mlp-512":     `{"input_shape": [784], "layers": [{"type": "dense", "units": 512, "activation": "relu"}, {"type": "dropout", "rate": 0.2}, {"type": "dense", "units": 512, "activation": "relu"}, {"type": "dense", "units": 10, "activation": "softmax"}], "loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`,
		"cnn":         `{"input_shape": [28, 28, 1], "layers": [{"type": "conv2d", "filters": 32, "kernel_size": 3, "activation": "relu"}, {"type": "max_pooling2d", "pool_size": 2}, {"type": "conv2d", "filters": 64, "kernel_size": 3, "activation": "relu"}, {"type": "max_pooling2d"}, {"type": "flatten"}, {"type": "dense", "units": 128, "activation": "relu"}, {"type": "dense", "units": 10, "activation": "softmax"}], "loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`,
		"cnn-float64": `{"input_shape": [28, 28, 1], "dtype": "float64", "layers": [{"type": "conv2d", "filters": 16, "kernel_size": 5, "activation": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}], "loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`,
		"lstm":        `{"input_shape": [784], "layers": [{"type": "reshape", "target_shape": [28, 28]}, {"type": "lstm", "units": 128}, {"type": "dense", "units": 10, "activation": "softmax"}], "loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`,
		"rnn-seq":     `{"input_shape": [784], "layers": [{"type": "reshape", "target_shape": [28, 28]}, {"type": "simple_rnn", "units": 64, "return_sequences": true, "dropout": 0.1}, {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}], "loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			spec, f := parseFootprint(t, js)
			for _, c := range []struct {
				what string
				rows int
				est  uint64
				run  func(m *Model, b *Batch)
			}{
				{"training", 64, f.Training(64), func(m *Model, b *Batch) { m.ComputeGradients(b, 0) }},
				{"evaluation", 256, f.Evaluation(256), func(m *Model, b *Batch) { m.Predict(b.X, b.Rows) }},
			} {
				before := heapAfterGC()
				m, err := New(spec)
				if err != nil {
					t.Fatal(err)
				}
				m.Initialize(1)
				r := rand.New(rand.NewPCG(1, 2))
				b := &Batch{X: make([]float64, c.rows*m.InputSize()), Labels: make([]int, c.rows), Rows: c.rows}
				for i := range b.X {
					b.X[i] = r.Float64()
				}
				for i := range b.Labels {
					b.Labels[i] = r.IntN(10)
				}
				c.run(m, b)
				after := heapAfterGC()
				runtime.KeepAlive(m)
				runtime.KeepAlive(b)
				used := after - min(before, after) // the model and the batch

				t.Logf("%s at %d rows: %s used, estimated %s", c.what, c.rows, mib(used), mib(c.est))
				// The heap moves by a fraction of a MiB between two reads
				// for reasons of the runtime's own (other tests' goroutines,
				// GC bookkeeping): a MiB of slack on both sides, which the
				// small models' estimates are smaller than.
				if c.est+1<<20 < used || c.est > 3*used+2<<20 {
					t.Errorf("%s at %d rows: the pass keeps %s; the estimate, %s, is not between 1 and 3 times that", c.what, c.rows, mib(used), mib(c.est))
				}
			}
		})
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

// TestFootprintCountsParameterBytes holds the estimate of what does not
// depend on the batch to the heap a float32 model keeps after a one-sample
// training step: a float32 model keeps float32 parameters, gradients and
// Adam slots (16 bytes a parameter), a float64 copy only of the layers
// that compute on float64 ones (16 more bytes for each of their
// parameters) and its first layer's kernel gathered to the nonzero input
// columns. The estimate is never below the heap (less 1 MiB of noise) and
// at most 1.5 times it: a model that kept a float64 copy of every
// parameter would exceed it.
func TestFootprintCountsParameterBytes(t *testing.T) {
	const layers = `[{"type": "dense", "units": 512, "activation": "relu"}, {"type": "dense", "units": 512, "activation": "relu"%s}, {"type": "dense", "units": 10, "activation": "softmax"}]`
	for name, mid := range map[string]string{"float32": "", "float64-layer": `, "dtype": "float64"`} {
		t.Run(name, func(t *testing.T) {
			js := `{"input_shape": [784], "layers": ` + fmt.Sprintf(layers, mid) + `, "loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`
			spec, f := parseFootprint(t, js)
			before := heapAfterGC()
			m, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			m.Initialize(1)
			// Zero in the first quarter of the columns, so that the first
			// layer gathers its kernel's other rows.
			b := &Batch{X: make([]float64, m.InputSize()), Labels: []int{3}, Rows: 1}
			for i := m.InputSize() / 4; i < m.InputSize(); i++ {
				b.X[i] = float64(i%7) / 7
			}
			m.ComputeGradients(b, 0)
			after := heapAfterGC()
			runtime.KeepAlive(m)
			used := after - min(before, after)
			est := f.Training(1)
			t.Logf("%d parameters: %s used, estimated %s", m.NumParams(), mib(used), mib(est))
			if est+1<<20 < used || 2*est > 3*used+2<<20 {
				t.Errorf("the model keeps %s; the estimate, %s, is not between 1 and 1.5 times that", mib(used), mib(est))
			}
		})
	}
}

// parseFootprint parses the model description js and estimates its
// footprint, failing the test on either error.
func parseFootprint(t *testing.T, js string) (Spec, Footprint) {
	t.Helper()
	spec, err := ParseSpec([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	f, err := EstimateFootprint(spec)
	if err != nil {
		t.Fatal(err)
	}
	return spec, f
}

// TestFootprintCountsTheSnapshot: EstimateFootprint's Snapshot is the
// bytes a saved Snapshot holds, 12 a parameter for a float32 model with
// Adam and 24 for a float64 one, and NumParams the model's.
func TestFootprintCountsTheSnapshot(t *testing.T) {
	optimizer := func(name string, momentum float64, centered bool) OptimizerSpec {
		o, err := DefaultOptimizer(name)
		if err != nil {
			t.Fatal(err)
		}
		o.Momentum, o.Centered = momentum, centered
		return o
	}
	optimizers := []OptimizerSpec{optimizer("adam", 0, false), optimizer("sgd", 0, false), optimizer("sgd", 0.9, false),
		optimizer("rmsprop", 0, false), optimizer("rmsprop", 0.9, true)}
	for i, dtype := range []string{"float32", "float64", "float32", "float64", "float32"} {
		spec := mlp(64)
		spec.Dtype, spec.Optimizer = dtype, optimizers[i]
		m, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		m.SaveSnapshot(&s)
		held := 4*len(s.f32.params) + 8*len(s.f64.params)
		for i := range s.f32.slots {
			held += 4 * len(s.f32.slots[i])
		}
		for i := range s.f64.slots {
			held += 8 * len(s.f64.slots[i])
		}
		f, err := EstimateFootprint(spec)
		if err != nil {
			t.Fatal(err)
		}
		if f.Snapshot != uint64(held) || f.NumParams != uint64(m.NumParams()) {
			t.Errorf("%s, %+v: footprint counts a snapshot of %d bytes and %d parameters; the snapshot holds %d bytes, the model %d parameters",
				dtype, spec.Optimizer, f.Snapshot, f.NumParams, held, m.NumParams())
		}
	}
}
