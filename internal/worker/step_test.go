package worker

import (
	"context"
	"errors"
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
	"ringtrain/internal/testmain"
)

// memberlist.Shutdown does not wait for a probe in flight to end; that
// goroutine finishes on its own.
func TestMain(m *testing.M) {
	testmain.Run(m, goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).triggerFunc"))
}

// replicas is a job of n in-process workers over an in-memory ring.
type replicas struct {
	steppers []*stepper
	lanes    []*sampler.Lanes
	plan     *sampler.Plan
	rings    []allreduce.Transport
	// outcomes holds every worker's outcome of the last step it took.
	outcomes []stepOutcome
}

// loadMNIST returns a split of MNIST, skipping the test where the data is
// missing.
func loadMNIST(t testing.TB, split mnist.Split) *mnist.Set {
	t.Helper()
	dir, err := mnist.DefaultDir()
	if err != nil {
		t.Skip(err)
	}
	s, err := mnistSets[split](dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mnistSets loads each split once for the whole test binary: decoding the
// training set and indexing its pixels takes seconds under -race, and no
// test changes a Set.
var mnistSets = map[mnist.Split]func(dir string) (*mnist.Set, error){
	mnist.Train: onceLoad(mnist.Train),
	mnist.Test:  onceLoad(mnist.Test),
}

func onceLoad(split mnist.Split) func(dir string) (*mnist.Set, error) {
	var (
		once sync.Once
		set  *mnist.Set
		err  error
	)
	return func(dir string) (*mnist.Set, error) {
		once.Do(func() { set, err = mnist.Load(dir, split) })
		return set, err
	}
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
	rep := &replicas{plan: plan, rings: allreduce.NewMemRing(n), outcomes: make([]stepOutcome, n)}
	b := globalBatch / n
	for r := 0; r < n; r++ {
		m, _ := nn.New(spec)
		m.SetParams(paramsOf(init))
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

// overlap sets every worker's bucket size (0: no overlap).
func (rep *replicas) overlap(bucketBytes int) {
	for _, st := range rep.steppers {
		st.bucketBytes = bucketBytes
	}
}

func (rep *replicas) close() {
	for _, r := range rep.rings {
		r.Close()
	}
}

// train runs steps synchronized steps on every worker and returns rank 0's
// last loss, or the first worker's error.
func (rep *replicas) train(t testing.TB, steps int) (float64, error) {
	loss, errs := rep.trainAll(t, steps)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return loss, nil
}

// trainAll is train, returning every worker's error.
func (rep *replicas) trainAll(t testing.TB, steps int) (float64, []error) {
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
				if losses[r], rep.outcomes[r], _, err = rep.steppers[r].step(context.Background(), uint64(step), local, false); err != nil {
					errs[r] = err
					rep.rings[r].Close()
					return
				}
			}
		}()
	}
	wg.Wait()
	return losses[0], errs
}

// TestDeterministicIndependentOfWorkers trains 8 deterministic steps at
// global batch 48 on 1, 2, 3, 4 and 8 workers, reducing the gradient after
// the backward pass or in buckets during it: the weights are bit-identical.
func TestDeterministicIndependentOfWorkers(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(6000))
	spec := nn.KerasMNIST()
	spec.Layers = append(spec.Layers[:1], append([]nn.LayerSpec{{Type: "dropout", Rate: 0.1}}, spec.Layers[1:]...)...)
	// Eight steps carry Adam's moments and fresh dropout masks through
	// several updates; a step of 24 fixed-point micro-batch sums takes a
	// tenth of a second under -race, and the ten jobs run 80.
	const steps = 8
	var want []float64
	for _, n := range []int{1, 2, 3, 4, 8} {
		for _, bucket := range []int{0, 512} {
			rep := newReplicas(t, spec, data, n, 48, 2, 9)
			rep.overlap(bucket)
			if _, err := rep.train(t, steps); err != nil {
				t.Fatal(err)
			}
			rep.close()
			got := paramsOf(rep.steppers[0].model)
			for r, st := range rep.steppers[1:] {
				if !slices.Equal(paramsOf(st.model), got) {
					t.Fatalf("%d workers, buckets of %d bytes: rank %d differs from rank 0", n, bucket, r+1)
				}
			}
			if want == nil {
				want = slices.Clone(got)
			} else if !slices.Equal(got, want) {
				t.Fatalf("%d workers, buckets of %d bytes: weights differ from one worker's", n, bucket)
			}
			// Overlapped, a bucket a layer (each of the last two holds
			// 110 values of 8 bytes, at least 512 bytes); one collective
			// a step otherwise.
			if c, wantC := rep.steppers[0].collective, uint64(steps*(1+2*min(bucket, 1))); n > 1 && c != wantC {
				t.Fatalf("%d workers, buckets of %d bytes: %d collectives in %d steps, want %d", n, bucket, c, steps, wantC)
			}
		}
	}
}

// TestDeterministicAccuracyMatchesOrdinary trains the Keras example (batch
// 32, 2 epochs of the first 6,000 training images) in both modes: both
// models learned (test accuracy at least 0.8; they reach about 0.85) and
// their final test accuracies are within 0.2 points.
func TestDeterministicAccuracyMatchesOrdinary(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the Keras example twice")
	}
	train, test := loadMNIST(t, mnist.Train).Subset(seqInts(6000)), loadMNIST(t, mnist.Test)
	acc := func(micro int) float64 {
		rep := newReplicas(t, nn.KerasMNIST(), train, 1, 32, micro, 1)
		defer rep.close()
		if _, err := rep.train(t, 2*rep.plan.StepsPerEpoch()); err != nil {
			t.Fatal(err)
		}
		_, a := rep.steppers[0].model.Evaluate(test)
		return a
	}
	ordinary, deterministic := acc(0), acc(4)
	t.Logf("test accuracy: ordinary %.4f, deterministic %.4f", ordinary, deterministic)
	if ordinary < 0.8 || deterministic < 0.8 {
		t.Fatalf("test accuracy: ordinary %.4f, deterministic %.4f; want both at least 0.8", ordinary, deterministic)
	}
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
			setParams(st.model, func(i int) float64 { return scale * float64(i%7-3) })
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
			want = paramsOf(rep.steppers[0].model)
		} else if !slices.Equal(want, paramsOf(rep.steppers[0].model)) {
			t.Fatal("rescaled training differs between 1 and 2 workers")
		}
	}
	rep := newReplicas(t, spec, data, 2, 8, 2, 3)
	defer rep.close()
	extreme(rep, math.Inf(1))
	_, err := rep.train(t, 1)
	var nf *errNonFinite
	if !errors.As(err, &nf) {
		t.Fatalf("infinite gradients: %v, want a non-finite gradient error", err)
	}

	// Finite gradients beyond the range even at the coarsest resolution
	// are a diverged step, under the non-finite policy: the step stops
	// (retrying would compute the same), or every replica skips it.
	for _, skip := range []bool{false, true} {
		rep := newReplicas(t, spec, data, 2, 8, 2, 3)
		extreme(rep, 1e20)
		before := paramsOf(rep.steppers[0].model)
		for _, st := range rep.steppers {
			st.skipNonFinite = skip
		}
		loss, errs := rep.trainAll(t, 1)
		rep.close()
		if !skip {
			for r, err := range errs {
				if !errors.As(err, &nf) || !nf.outOfRange || !strings.Contains(err.Error(), "beyond the fixed-point range") {
					t.Fatalf("rank %d: %v, want a non-finite error saying the gradient is beyond the fixed-point range", r, err)
				}
			}
			continue
		}
		if errs[0] != nil || errs[1] != nil || !math.IsNaN(loss) {
			t.Fatalf("skip policy: errors %v, loss %v; want the step skipped", errs, loss)
		}
		for r, st := range rep.steppers {
			if !slices.Equal(paramsOf(st.model), before) {
				t.Fatalf("rank %d applied an out-of-range step", r)
			}
		}
	}
}

// poisoned is a data set whose samples read as NaN while on is set: a
// corrupt input on one worker.
type poisoned struct {
	nn.Dataset
	on bool
}

func (p *poisoned) Gather(ids []int, x []float64, labels []int) {
	p.Dataset.Gather(ids, x, labels)
	if p.on {
		x[0] = math.NaN()
	}
}

// TestNonFiniteGradient poisons one worker's batch for one step. Under the
// skip policy every replica skips that update (weights, optimizer state and
// backup unchanged and identical) and training goes on; under the stop
// policy every worker fails the step, and only the poisoned one says the
// batch was its own.
func TestNonFiniteGradient(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(640))
	for _, c := range []struct{ micro, bucket int }{{0, 0}, {2, 0}, {0, 512}, {2, 512}} {
		micro := c.micro
		for _, skip := range []bool{true, false} {
			t.Run(fmt.Sprintf("micro=%d/bucket=%d/skip=%v", micro, c.bucket, skip), func(t *testing.T) {
				rep := newReplicas(t, nn.KerasMNIST(), data, 2, 16, micro, 1)
				defer rep.close()
				rep.overlap(c.bucket)
				bad := &poisoned{Dataset: data}
				rep.steppers[1].data = bad
				for _, st := range rep.steppers {
					st.skipNonFinite = skip
				}
				if _, err := rep.train(t, 2); err != nil {
					t.Fatal(err)
				}
				before := paramsOf(rep.steppers[0].model)
				bad.on = true
				loss, errs := rep.trainAll(t, 1)
				bad.on = false
				if !skip {
					for r, err := range errs {
						var nf *errNonFinite
						if !errors.As(err, &nf) || nf.here != (r == 1) {
							t.Fatalf("rank %d: %v, want a non-finite error (own batch: %v)", r, err, r == 1)
						}
					}
					return
				}
				if errs[0] != nil || errs[1] != nil {
					t.Fatalf("skip policy: %v", errs)
				}
				if !math.IsNaN(loss) {
					t.Fatalf("skipped step's loss %v, want NaN", loss)
				}
				for r, st := range rep.steppers {
					if !slices.Equal(paramsOf(st.model), before) {
						t.Fatalf("rank %d applied a non-finite step", r)
					}
					restored, _ := nn.New(nn.KerasMNIST())
					if err := restored.LoadSnapshot(st.backup); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(paramsOf(restored), before) {
						t.Fatalf("rank %d: the backup after a skipped step is not the current state", r)
					}
				}
				if _, err := rep.train(t, 2); err != nil {
					t.Fatal(err)
				}
				p0, p1 := paramsOf(rep.steppers[0].model), paramsOf(rep.steppers[1].model)
				if slices.Equal(p0, before) || !slices.Equal(p0, p1) {
					t.Fatal("after the skipped step, training did not go on identically on both replicas")
				}
			})
		}
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

// paramsOf is a float64 copy of m's parameters, whatever its dtype.
func paramsOf(m *nn.Model) []float64 { return m.AppendParams(nil) }

// setParams sets parameter i of m to f(i), rounded to m's dtype.
func setParams(m *nn.Model, f func(i int) float64) {
	p := make([]float64, m.NumParams())
	for i := range p {
		p[i] = f(i)
	}
	m.SetParams(p)
}

// reducedOf is a float64 copy of the ordinary mode's vector.
func reducedOf(s *stepper) []float64 {
	if s.reduced32 == nil {
		return slices.Clone(s.reduced)
	}
	v := make([]float64, len(s.reduced32))
	for i, x := range s.reduced32 {
		v[i] = float64(x)
	}
	return v
}
