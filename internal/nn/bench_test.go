package nn

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"ringtrain/internal/mnist"
	"ringtrain/internal/sampler"
)

// loadTrain returns the real MNIST training set, skipping the test when the
// data cannot be found. The set is loaded once per test binary (under
// -race decompressing and checking it costs seconds) and shared: callers
// read it and take Subsets, never change it.
func loadTrain(tb testing.TB) *mnist.Set {
	tb.Helper()
	train := sharedTrain()
	if train.skip != nil {
		tb.Skip(train.skip)
	}
	if train.err != nil {
		tb.Fatal(train.err)
	}
	return train.set
}

var sharedTrain = sync.OnceValue(func() (r struct {
	set       *mnist.Set
	skip, err error
}) {
	dir, err := mnist.DefaultDir()
	if err != nil {
		r.skip = err
		return r
	}
	r.set, r.err = mnist.Load(dir, mnist.Train)
	return r
})

// mlp returns the Keras example's model with the given hidden widths.
func mlp(hidden ...int) Spec {
	s := KerasMNIST()
	s.Layers = nil
	for _, h := range hidden {
		s.Layers = append(s.Layers, LayerSpec{Type: "dense", Units: h, Activation: "relu"})
	}
	s.Layers = append(s.Layers, LayerSpec{Type: "dense", Units: 10, Activation: "softmax"})
	return s
}

// BenchmarkTrainStep measures one full training step on real MNIST: gather
// the batch, forward, backward, the optimiser. samples/s is the throughput;
// samples/cpu-s divides by the CPU time the process used instead, which a
// machine shared with other work disturbs far less.
// cnn and lstm are examples/cnn.json and examples/lstm.json (their
// learning-rate schedules included); the -float64 cases are the same models
// with "dtype": "float64".
func BenchmarkTrainStep(b *testing.B) {
	data := loadTrain(b)
	example := func(name string) Spec {
		raw, err := os.ReadFile(filepath.Join("..", "..", "examples", name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		s, err := ParseSpec(raw)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	f64 := func(s Spec) Spec { s.Dtype = "float64"; return s }
	cases := []struct {
		name  string
		spec  Spec
		batch int
	}{
		{"keras/batch=32", mlp(10, 10), 32},
		{"keras/batch=256", mlp(10, 10), 256},
		{"mlp512/batch=256", mlp(512, 512), 256},
		{"cnn/batch=32", example("cnn"), 32},
		{"lstm/batch=64", example("lstm"), 64},
		{"keras-float64/batch=32", f64(mlp(10, 10)), 32},
		{"mlp512-float64/batch=256", f64(mlp(512, 512)), 256},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m, err := New(c.spec)
			if err != nil {
				b.Fatal(err)
			}
			m.Initialize(1)
			plan, err := sampler.NewPlan(data.Len(), c.batch, 1)
			if err != nil {
				b.Fatal(err)
			}
			order := plan.Range(0, c.batch).Epoch(0)
			batch := &Batch{Labels: make([]int, c.batch)}
			b.ResetTimer()
			cpu := cpuSeconds()
			for i := 0; i < b.N; i++ {
				batch.IDs = order.Batch(i%plan.StepsPerEpoch(), batch.IDs[:0])
				Gather(data, batch.IDs, batch)
				m.ComputeGradients(batch, uint64(i))
				m.ApplyGradients()
			}
			samples := float64(c.batch) * float64(b.N)
			b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
			if cpu := cpuSeconds() - cpu; cpu > 0 {
				b.ReportMetric(samples/cpu, "samples/cpu-s")
			}
		})
	}
}

var benchSink float64

// BenchmarkGather measures assembling a batch of 32 scaled MNIST images.
func BenchmarkGather(b *testing.B) {
	data := loadTrain(b)
	x := make([]float64, 32*784)
	y := make([]int, 32)
	ids := make([]int, 32)
	for i := range ids {
		ids[i] = i * 1000
	}
	for i := 0; i < b.N; i++ {
		data.Gather(ids, x, y)
	}
	benchSink = x[0]
}

func ExampleKerasMNIST() {
	fmt.Println(KerasMNIST().Summary())
	// Output: 784 → dense 10 relu → dense 10 relu → dense 10 softmax; sparse_categorical_crossentropy; adam lr 0.001
}

// BenchmarkSnapshot measures saving and restoring the worker's undo copy of
// the 784-512-512-10 model (670k parameters, Adam), as a worker does before
// every update, in each dtype.
func BenchmarkSnapshot(b *testing.B) {
	for _, dtype := range []string{"float32", "float64"} {
		spec := mlp(512, 512)
		spec.Dtype = dtype
		m, err := New(spec)
		if err != nil {
			b.Fatal(err)
		}
		m.Initialize(1)
		var s Snapshot
		m.SaveSnapshot(&s)
		b.Run(dtype+"/save", func(b *testing.B) {
			for b.Loop() {
				m.SaveSnapshot(&s)
			}
		})
		b.Run(dtype+"/load", func(b *testing.B) {
			for b.Loop() {
				if err := m.LoadSnapshot(&s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyKeeping measures a worker's update of the 784-512-512-10
// model (float32, Adam): the undo copy saved, then the update
// (save+apply), against ApplyGradientsKeeping, which keeps the old state
// in the update's own pass (keeping).
func BenchmarkApplyKeeping(b *testing.B) {
	m, err := New(mlp(512, 512))
	if err != nil {
		b.Fatal(err)
	}
	m.Initialize(1)
	var s Snapshot
	b.Run("save+apply", func(b *testing.B) {
		for b.Loop() {
			m.SaveSnapshot(&s)
			m.ApplyGradients()
		}
	})
	b.Run("keeping", func(b *testing.B) {
		for b.Loop() {
			m.ApplyGradientsKeeping(&s)
		}
	})
}

// BenchmarkEvaluate measures an evaluation of the Keras example on 10,000
// training images (the size of the test set the coordinator evaluates at
// every epoch's end), their sparse index built beforehand.
func BenchmarkEvaluate(b *testing.B) {
	data := loadTrain(b)
	ids := make([]int, 10000)
	for i := range ids {
		ids[i] = i
	}
	set := data.Subset(ids)
	set.IndexNonzero()
	m, err := New(KerasMNIST())
	if err != nil {
		b.Fatal(err)
	}
	m.Initialize(1)
	for b.Loop() {
		m.Evaluate(set)
	}
	b.ReportMetric(float64(set.Count*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkGatherSparse measures assembling the sparse rows of a batch of
// 32 MNIST images drawn at random from the training set, as a training
// step does: the set's index (tens of MiB) does not fit in cache, so this
// is mostly memory latency.
func BenchmarkGatherSparse(b *testing.B) {
	data := loadTrain(b)
	data.IndexNonzero()
	rng := rand.New(rand.NewPCG(1, 2))
	batch := &Batch{Labels: make([]int, 32)}
	ids := make([]int, 32)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range ids {
			ids[j] = rng.IntN(data.Len())
		}
		Gather(data, ids, batch)
	}
}
