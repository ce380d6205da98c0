package worker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/fixedpoint"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
	"ringtrain/internal/sampler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// replicas is a job of n in-process workers over an in-memory ring.
type replicas struct {
	steppers []*stepper
	lanes    []*sampler.Lanes
	plan     *sampler.Plan
	rings    []allreduce.Transport
}

func loadMNIST(t testing.TB, split mnist.Split) *mnist.Set {
	t.Helper()
	dir, err := mnist.DefaultDir()
	if err != nil {
		t.Skip(err)
	}
	s, err := mnist.Load(dir, split)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newReplicas builds n workers sharing a global batch, each with the whole
// data set (the lanes pick their samples), the same initial weights and,
// when micro > 0, deterministic mode.
func newReplicas(t testing.TB, spec nn.Spec, data *mnist.Set, n, globalBatch, micro int, seed uint64) *replicas {
	t.Helper()
	plan, err := sampler.NewPlan(data.Count, globalBatch, seed)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, data.Count)
	for i := range ids {
		ids[i] = i
	}
	init, err := nn.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	init.Initialize(seed)
	rep := &replicas{plan: plan, rings: allreduce.NewMemRing(n)}
	b := globalBatch / n
	for r := 0; r < n; r++ {
		m, _ := nn.New(spec)
		copy(m.Params(), init.Params())
		m.SetSeed(seed)
		st := newStepper(m, allreduce.New(rep.rings[r], allreduce.DefaultConfig()), data, ids, globalBatch, time.Minute)
		st.backup = &nn.Snapshot{} // as a worker keeps one, to undo a step
		if micro > 0 {
			if err := st.deterministicMode(micro, fixedpoint.DefaultBits); err != nil {
				t.Fatal(err)
			}
		}
		rep.steppers = append(rep.steppers, st)
		rep.lanes = append(rep.lanes, plan.Range(r*b, b))
	}
	return rep
}

func (rep *replicas) close() {
	for _, r := range rep.rings {
		r.Close()
	}
}

// train runs steps synchronized steps on every worker and returns rank 0's
// last loss.
func (rep *replicas) train(t testing.TB, steps int) (float64, error) {
	n := len(rep.steppers)
	spe := rep.plan.StepsPerEpoch()
	losses := make([]float64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := 0; r < n; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var order *sampler.Epoch
			var local []int
			for step := 0; step < steps; step++ {
				if step%spe == 0 {
					order = rep.lanes[r].Epoch(step / spe)
				}
				local = order.Batch(step%spe, local[:0])
				var err error
				if losses[r], _, _, err = rep.steppers[r].step(context.Background(), uint64(step), local, false); err != nil {
					errs[r] = err
					rep.rings[r].Close()
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return losses[0], nil
}

// TestDeterministicIndependentOfWorkers trains 60 deterministic steps at
// global batch 24 on 1, 2, 3 and 4 workers: the weights are bit-identical.
func TestDeterministicIndependentOfWorkers(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(6000))
	spec := nn.KerasMNIST()
	spec.Layers = append(spec.Layers[:1], append([]nn.LayerSpec{{Type: "dropout", Rate: 0.1}}, spec.Layers[1:]...)...)
	var want []float64
	for _, n := range []int{1, 2, 3, 4} {
		rep := newReplicas(t, spec, data, n, 24, 2, 9)
		if _, err := rep.train(t, 60); err != nil {
			t.Fatal(err)
		}
		rep.close()
		got := rep.steppers[0].model.Params()
		for r, st := range rep.steppers[1:] {
			if !slices.Equal(st.model.Params(), got) {
				t.Fatalf("%d workers: rank %d differs from rank 0", n, r+1)
			}
		}
		if want == nil {
			want = slices.Clone(got)
		} else if !slices.Equal(got, want) {
			t.Fatalf("%d workers: weights differ from one worker's", n)
		}
	}
}

// TestDeterministicAccuracyMatchesOrdinary trains the Keras example (batch
// 32, 5 epochs) in both modes: final test accuracies within 0.2 points.
func TestDeterministicAccuracyMatchesOrdinary(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the Keras example twice")
	}
	train, test := loadMNIST(t, mnist.Train), loadMNIST(t, mnist.Test)
	acc := func(micro int) float64 {
		rep := newReplicas(t, nn.KerasMNIST(), train, 1, 32, micro, 1)
		defer rep.close()
		if _, err := rep.train(t, 5*rep.plan.StepsPerEpoch()); err != nil {
			t.Fatal(err)
		}
		_, a := rep.steppers[0].model.Evaluate(test)
		return a
	}
	ordinary, deterministic := acc(0), acc(4)
	t.Logf("test accuracy: ordinary %.4f, deterministic %.4f", ordinary, deterministic)
	if math.Abs(ordinary-deterministic) > 0.002 {
		t.Fatalf("deterministic mode's accuracy %.4f is more than 0.2 points from ordinary mode's %.4f", deterministic, ordinary)
	}
}

// TestFixedPointOverflowRescalesOrStops drives gradients out of the
// fixed-point range: huge ones make every worker coarsen the resolution
// together (and stay bit-identical); infinite ones stop the step with an
// error.
func TestFixedPointOverflowRescalesOrStops(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(600))
	spec := nn.Spec{InputShape: []int{784}, Layers: []nn.LayerSpec{{Type: "dense", Units: 10}},
		Loss: nn.MeanSquaredError, Optimizer: nn.OptimizerSpec{Name: "sgd", LearningRate: 1e-12}}
	extreme := func(rep *replicas, scale float64) {
		for _, st := range rep.steppers {
			for i := range st.model.Params() {
				st.model.Params()[i] = scale * float64(i%7-3)
			}
		}
	}
	var want []float64
	for _, n := range []int{1, 2} {
		rep := newReplicas(t, spec, data, n, 8, 2, 3)
		extreme(rep, 1e4) // outputs, and MSE gradients, near 1e6: beyond 40 bits' range
		if _, err := rep.train(t, 3); err != nil {
			t.Fatal(err)
		}
		rep.close()
		d := rep.steppers[0].det
		if d.rescales == 0 || d.bits >= fixedpoint.DefaultBits {
			t.Fatalf("%d workers: %d rescales, %d bits; want the resolution lowered", n, d.rescales, d.bits)
		}
		if want == nil {
			want = slices.Clone(rep.steppers[0].model.Params())
		} else if !slices.Equal(want, rep.steppers[0].model.Params()) {
			t.Fatal("rescaled training differs between 1 and 2 workers")
		}
	}
	rep := newReplicas(t, spec, data, 2, 8, 2, 3)
	defer rep.close()
	extreme(rep, math.Inf(1))
	_, err := rep.train(t, 1)
	if err == nil || !strings.Contains(err.Error(), "out of the fixed-point range") {
		t.Fatalf("infinite gradients: %v, want an error", err)
	}
}

// BenchmarkStep measures a synchronized step of the Keras example at
// per-worker batch 32 on N in-process workers over an in-memory ring, in
// ordinary and deterministic mode: the cost of determinism.
func BenchmarkStep(b *testing.B) {
	data := loadMNIST(b, mnist.Train)
	for _, n := range []int{1, 2, 4} {
		for _, mode := range []string{"ordinary", "deterministic"} {
			b.Run(fmt.Sprintf("N=%d/%s", n, mode), func(b *testing.B) {
				micro := 0
				if mode == "deterministic" {
					micro = 4
				}
				rep := newReplicas(b, nn.KerasMNIST(), data, n, 32*n, micro, 1)
				defer rep.close()
				b.ResetTimer()
				if _, err := rep.train(b, b.N); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(32*n*b.N)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
