package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/metrics"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
)

// TestCompressedTraining trains the Keras example on 3 workers with the
// gradient in float16 and in bfloat16, after the backward pass and in
// buckets during it: the replicas stay bit-identical (every one applies
// the same rounded sum), every applied gradient value is a 16-bit value
// (up to the 1/N of no averaging: the sum itself travels), the residuals
// hold error feedback, the loss, which travels in float32, is that of an
// uncompressed run to float32 rounding at the first step, and the weights
// after 40 steps stay close to the uncompressed run's (relative distance
// under 0.1% with float16's 11 significant bits, 3% with bfloat16's 8;
// measured 0.003% and 0.4-0.7%).
func TestCompressedTraining(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(3000))
	const n, steps = 3, 40
	run := func(compression string, bucket int) (*replicas, float64) {
		rep := newReplicas(t, nn.KerasMNIST(), data, n, 48, 0, 11)
		rep.overlap(bucket)
		for _, st := range rep.steppers {
			if err := st.compress(compression); err != nil {
				t.Fatal(err)
			}
		}
		loss, err := rep.train(t, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rep.train(t, steps-1); err != nil {
			t.Fatal(err)
		}
		rep.close()
		return rep, loss
	}
	plain, plainLoss := run("", 0)
	for _, c := range []struct {
		name  string
		kind  allreduce.Kind
		bound float64
	}{{"fp16", allreduce.Float16, 0.001}, {"bf16", allreduce.BFloat16, 0.03}} {
		// 256 bytes: two buckets, the last two layers' and the first's
		// with the header.
		for _, bucket := range []int{0, 256} {
			t.Run(fmt.Sprintf("%s/bucket=%d", c.name, bucket), func(t *testing.T) {
				rep, loss := run(c.name, bucket)
				if want := uint64(steps * (1 + min(bucket, 1))); rep.steppers[0].collective != want {
					t.Fatalf("%d collectives in %d steps, want %d", rep.steppers[0].collective, steps, want)
				}
				w := paramsOf(rep.steppers[0].model)
				for r, st := range rep.steppers[1:] {
					if !slices.Equal(paramsOf(st.model), w) {
						t.Fatalf("rank %d's weights differ from rank 0's", r+1)
					}
				}
				g := reducedOf(rep.steppers[0])[ordinaryHead:]
				for i, x := range g {
					if float64(allreduce.Round16(c.kind, float32(x))) != x {
						t.Fatalf("applied gradient value %d, %v, is not a %v value", i, x, c.kind)
					}
				}
				nonzero := 0
				for _, st := range rep.steppers {
					for _, e := range st.comp.residual {
						if e != 0 {
							nonzero++
						}
					}
				}
				if nonzero == 0 {
					t.Fatal("no residual kept: error feedback is off")
				}
				if math.Abs(loss-plainLoss) > 1e-6*plainLoss {
					t.Fatalf("first step's loss %v, uncompressed %v: the loss must travel exactly", loss, plainLoss)
				}
				var d2, w2 float64
				for i, x := range paramsOf(plain.steppers[0].model) {
					d2 += (w[i] - x) * (w[i] - x)
					w2 += x * x
				}
				if rel := math.Sqrt(d2 / w2); rel > c.bound {
					t.Fatalf("weights %.2g%% away from the uncompressed run's, want < %g%%", 100*rel, 100*c.bound)
				} else {
					t.Logf("weights %.3g%% away from the uncompressed run's", 100*rel)
				}
			})
		}
	}
}

// TestCompressionRefused refuses an unknown compression and compression in
// the deterministic mode, saying why.
func TestCompressionRefused(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(100))
	rep := newReplicas(t, nn.KerasMNIST(), data, 1, 8, 0, 1)
	defer rep.close()
	if err := rep.steppers[0].compress("fp8"); err == nil || !strings.Contains(err.Error(), `"fp8"`) {
		t.Fatalf("compression fp8: %v, want an error naming it", err)
	}
	det := newReplicas(t, nn.KerasMNIST(), data, 1, 8, 2, 1)
	defer det.close()
	if err := det.steppers[0].compress("fp16"); err == nil || !strings.Contains(err.Error(), "deterministic") {
		t.Fatalf("compression in deterministic mode: %v, want an error saying they cannot be combined", err)
	}
}

// TestFloat16OverflowNamed drives finite gradients beyond float16's range
// (weights of 1e6): with fp16 the step stops on every worker with an error
// that says the sum overflowed float16 and that bf16 keeps float32's
// range, not that some worker's batch was at fault; with bf16 the same
// step trains. A float64 model's finite gradients beyond float32's range
// (weights of 1e38) overflow bf16's range, float32's, which the error
// names. Under the skip policy the fp16 step is skipped, its outcome
// naming the overflow (what the worker logs), not another worker's batch.
func TestFloat16OverflowNamed(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(600))
	spec := nn.Spec{InputShape: []int{784}, Layers: []nn.LayerSpec{{Type: "dense", Units: 10}},
		Loss: nn.MeanSquaredError, Optimizer: nn.OptimizerSpec{Name: "sgd", LearningRate: 1e-12}}
	spec64 := spec
	spec64.Dtype = "float64"
	for _, c := range []struct {
		compression string
		spec        nn.Spec
		weight      float64
		want        string // in the error; "" for none
	}{
		{"fp16", spec, 1e6, "overflowed float16's range (65504) on the wire: -compression bf16 keeps float32's range"},
		{"bf16", spec, 1e6, ""},
		{"bf16", spec64, 1e38, "overflowed bfloat16's range, float32's, on the wire"},
		{"fp16 skip", spec, 1e6, "float16's range"},
	} {
		rep := newReplicas(t, c.spec, data, 2, 8, 0, 3)
		skip := strings.HasSuffix(c.compression, " skip")
		for _, st := range rep.steppers {
			st.skipNonFinite = skip
			if err := st.compress(strings.TrimSuffix(c.compression, " skip")); err != nil {
				t.Fatal(err)
			}
			setParams(st.model, func(i int) float64 { return c.weight * float64(i%7-3) })
		}
		_, errs := rep.trainAll(t, 1)
		rep.close()
		for r, err := range errs {
			var nf *errNonFinite
			switch out := rep.outcomes[r]; {
			case skip && (err != nil || !out.skipped || out.here || !strings.Contains(out.sumCause, c.want)):
				t.Fatalf("%s, rank %d: %v, skipped %v, own batch %v, cause %q; want the step skipped for the sum's overflow of %s",
					c.compression, r, err, out.skipped, out.here, out.sumCause, c.want)
			case skip:
			case c.want == "" && err != nil:
				t.Fatalf("%s, weights of %g, rank %d: %v", c.compression, c.weight, r, err)
			case c.want != "" && (!errors.As(err, &nf) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "batch")):
				t.Fatalf("%s, weights of %g, rank %d: %v; want an error saying the sum %s", c.compression, c.weight, r, err, c.want)
			}
		}
	}
}

// TestReducedBytes sizes a step's vector on the wire, as the
// ringtrain_allreduce_bytes_total metric counts it: 8 bytes a value for a
// float64 model or one worker, 4 for float32, 2 a gradient value (4 for
// the loss and counts) compressed, 8 for the deterministic mode's sums.
func TestReducedBytes(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(100))
	f64 := nn.KerasMNIST()
	f64.Dtype = "float64"
	for _, c := range []struct {
		spec                 nn.Spec
		n, micro             int
		compression          string
		bytesPerValue, extra int
	}{
		{nn.KerasMNIST(), 2, 0, "", 4, 4 * ordinaryHead},
		{f64, 2, 0, "", 8, 8 * ordinaryHead},
		{nn.KerasMNIST(), 1, 0, "", 4, 4 * ordinaryHead},
		{nn.KerasMNIST(), 2, 0, "fp16", 2, 4 * ordinaryHead},
		{nn.KerasMNIST(), 2, 2, "", 8, 8 * detHead},
	} {
		rep := newReplicas(t, c.spec, data, c.n, 8, c.micro, 1)
		st := rep.steppers[0]
		p := st.model.NumParams()
		if err := st.compress(c.compression); err != nil {
			t.Fatal(err)
		}
		if got, want := st.reducedBytes(), c.bytesPerValue*p+c.extra; got != want {
			t.Errorf("%s model, %d workers, micro %d, compression %q: %d bytes, want %d", c.spec.DtypeOrDefault(), c.n, c.micro, c.compression, got, want)
		}
		rep.close()
	}
}

// TestSkippedStepKeepsNoResidual poisons one of 2 compressed workers'
// batches for one step under the skip policy, after the gradient in one
// collective and in buckets: no replica applies that step, so no worker
// keeps back what rounding took from its sum (a residual given back at
// the next step would add part of a gradient nobody applied); training
// then goes on, the replicas identical.
func TestSkippedStepKeepsNoResidual(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(640))
	for _, bucket := range []int{0, 256} {
		t.Run(fmt.Sprintf("bucket=%d", bucket), func(t *testing.T) {
			rep := newReplicas(t, nn.KerasMNIST(), data, 2, 16, 0, 1)
			defer rep.close()
			rep.overlap(bucket)
			bad := &poisoned{Dataset: data}
			rep.steppers[1].data = bad
			for _, st := range rep.steppers {
				st.skipNonFinite = true
				if err := st.compress("fp16"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := rep.train(t, 2); err != nil {
				t.Fatal(err)
			}
			for r, st := range rep.steppers {
				if !slices.ContainsFunc(st.comp.residual, func(e float32) bool { return e != 0 }) {
					t.Fatalf("rank %d keeps no residual after 2 compressed steps", r)
				}
			}
			bad.on = true
			loss, errs := rep.trainAll(t, 1)
			bad.on = false
			if errs[0] != nil || errs[1] != nil || !math.IsNaN(loss) {
				t.Fatalf("poisoned step: loss %v, errors %v; want it skipped", loss, errs)
			}
			for r, st := range rep.steppers {
				if i := slices.IndexFunc(st.comp.residual, func(e float32) bool { return e != 0 }); i >= 0 {
					t.Fatalf("rank %d keeps residual %v for value %d of a step no replica applied", r, st.comp.residual[i], i)
				}
			}
			if _, err := rep.train(t, 2); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(paramsOf(rep.steppers[0].model), paramsOf(rep.steppers[1].model)) {
				t.Fatal("after the skipped step the replicas differ")
			}
		})
	}
}

// TestCompressedBucketsKeepTheirResiduals reduces a compressed vector of 3
// header values and 1000 gradient values on 3 workers in two buckets, as
// an overlapped step does, from workers' residuals of earlier steps: every
// worker ends with the same 16-bit sums and the exact header sums, and for
// every gradient value the sum plus what the workers kept back is the sum
// of their inputs and the residuals they were given (to float32 rounding):
// each bucket gives back and renews the residuals of its own values.
func TestCompressedBucketsKeepTheirResiduals(t *testing.T) {
	const n, grad, cut = 3, 1000, 603
	rings := allreduce.NewMemRing(n)
	defer func() {
		for _, r := range rings {
			r.Close()
		}
	}()
	rng := rand.New(rand.NewPCG(3, 4))
	steppers := make([]*stepper, n)
	want := make([]float64, ordinaryHead+grad) // inputs plus residuals given
	bound := make([]float64, ordinaryHead+grad)
	for r := range steppers {
		st := &stepper{ring: allreduce.New(rings[r], allreduce.DefaultConfig()), timeout: time.Minute,
			reduced: make([]float64, ordinaryHead+grad), comp: &compression{kind: allreduce.Float16, residual: make([]float32, grad)}}
		for i := range st.reduced {
			x := float64(float32(rng.NormFloat64()))
			if i < ordinaryHead {
				x = float64(rng.IntN(100)) // the loss and counts: exact in float32 sums
			}
			st.reduced[i] = x
			want[i] += x
			bound[i] += math.Abs(x)
		}
		for i := range st.comp.residual {
			e := float32(rng.NormFloat64() * 0x1p-12)
			st.comp.residual[i] = e
			want[ordinaryHead+i] += float64(e)
			bound[ordinaryHead+i] += math.Abs(float64(e))
		}
		steppers[r] = st
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r, st := range steppers {
		wg.Go(func() {
			b := st.startBuckets(context.Background(), 0, len(st.reduced), ordinaryHead, 300, st.allReduce)
			b.add(cut, len(st.reduced))
			b.add(ordinaryHead, cut)
			errs[r] = b.wait()
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		if c := steppers[r].collective; c != 2 {
			t.Fatalf("rank %d: %d collectives, want 2 buckets", r, c)
		}
	}
	sum := steppers[0].reduced
	for r, st := range steppers[1:] {
		if !slices.Equal(st.reduced, sum) {
			t.Fatalf("rank %d's sums differ from rank 0's", r+1)
		}
	}
	for i, x := range sum {
		if i < ordinaryHead {
			if x != want[i] {
				t.Fatalf("header value %d: %v, want exactly %v", i, x, want[i])
			}
			continue
		}
		if float64(allreduce.Round16(allreduce.Float16, float32(x))) != x {
			t.Fatalf("gradient value %d: %v is not a float16", i-ordinaryHead, x)
		}
		kept := 0.0
		for _, st := range steppers {
			kept += float64(st.comp.residual[i-ordinaryHead])
		}
		if d := math.Abs(x + kept - want[i]); d > 4*n*0x1p-24*bound[i] {
			t.Fatalf("gradient value %d (bucket from %d): sum %v and residuals %v give %v, want %v", i-ordinaryHead, cut, x, kept, x+kept, want[i])
		}
	}
}

// TestBytesOfEveryCollective counts a step's bytes on the wire as the
// ringtrain_allreduce_bytes_total metric does, per collective: a step
// skipped for a non-finite gradient (compressed, in buckets) reduced its
// vector too, and a deterministic step redone at a coarser resolution
// reduced its sums once per attempt.
func TestBytesOfEveryCollective(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(640))
	rep := newReplicas(t, nn.KerasMNIST(), data, 2, 16, 0, 1)
	defer rep.close()
	rep.overlap(256)
	bad := &poisoned{Dataset: data, on: true}
	rep.steppers[1].data = bad
	for _, st := range rep.steppers {
		st.skipNonFinite = true
		if err := st.compress("fp16"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rep.train(t, 1); err != nil {
		t.Fatal(err)
	}
	out := rep.outcomes[0]
	if !out.skipped || out.reduced != rep.steppers[0].reducedBytes() {
		t.Fatalf("skipped %v, %d bytes reduced; want the step skipped, %d bytes", out.skipped, out.reduced, rep.steppers[0].reducedBytes())
	}
	w := &worker{metrics: metrics.NewWorker()}
	w.recordStep(math.NaN(), out, stepTiming{}, 8)
	var counted dto.Metric
	if err := w.metrics.AllreduceBytes.Write(&counted); err != nil {
		t.Fatal(err)
	}
	if got := counted.GetCounter().GetValue(); got != float64(out.reduced) {
		t.Fatalf("metric counts %v bytes for the skipped step, want %d", got, out.reduced)
	}

	spec := nn.Spec{InputShape: []int{784}, Layers: []nn.LayerSpec{{Type: "dense", Units: 10}},
		Loss: nn.MeanSquaredError, Optimizer: nn.OptimizerSpec{Name: "sgd", LearningRate: 1e-12}}
	det := newReplicas(t, spec, data, 2, 8, 2, 3)
	defer det.close()
	for _, st := range det.steppers {
		setParams(st.model, func(i int) float64 { return 1e4 * float64(i%7-3) }) // gradients beyond 40 bits' range
	}
	if _, err := det.train(t, 1); err != nil {
		t.Fatal(err)
	}
	st := det.steppers[0]
	if st.det.rescales == 0 {
		t.Fatal("the step was not redone at a coarser resolution")
	}
	if got, want := det.outcomes[0].reduced, (1+st.det.rescales)*st.reducedBytes(); got != want {
		t.Fatalf("deterministic step of %d attempts: %d bytes reduced, want %d", 1+st.det.rescales, got, want)
	}
}

// forgingTransport writes a float16 NaN over the first compressed value
// of every reduce-scatter frame it sends (on 3 ranks, frames 0 and 1),
// while its worker's count of non-finite gradients says 0: a corrupted or
// forged frame.
type forgingTransport struct{ allreduce.Transport }

func (f *forgingTransport) Send(ctx context.Context, fr *allreduce.Frame) error {
	if fr.Abort != "" || fr.Seq > 1 {
		return f.Transport.Send(ctx, fr)
	}
	g := *fr
	data := slices.Concat(fr.Data...)
	data[16], data[17] = 0x00, 0x7e // element 2, past the header's exact elements
	g.Data = [][]byte{data}
	return f.Transport.Send(ctx, &g)
}

// TestForgedNaNNamed has one of 3 fp16 workers send a NaN no worker
// computed: every worker stops the step, and the error says the sum holds
// a NaN that no overflow makes, not that it overflowed float16's range
// (whose remedy, bf16, would not help).
func TestForgedNaNNamed(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(600))
	rep := newReplicas(t, nn.KerasMNIST(), data, 3, 24, 0, 1)
	defer rep.close()
	for _, st := range rep.steppers {
		if err := st.compress("fp16"); err != nil {
			t.Fatal(err)
		}
	}
	rep.steppers[0].ring = allreduce.New(&forgingTransport{rep.rings[0]}, allreduce.DefaultConfig())
	_, errs := rep.trainAll(t, 1)
	for r, err := range errs {
		var nf *errNonFinite
		if !errors.As(err, &nf) || nf.here || !strings.Contains(err.Error(), "NaN") || strings.Contains(err.Error(), "overflowed") {
			t.Fatalf("rank %d: %v; want a non-finite sum holding a NaN that no overflow makes", r, err)
		}
	}
}
