package worker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/fixedpoint"
	"ringtrain/internal/gemm"
	"ringtrain/internal/nn"
)

// stepper computes one synchronized training step: this worker's share of
// the gradient, the ring reduction with the other workers, the optimiser
// update. It is independent of how the worker got its data and its ring.
//
// Every collective carries, besides the gradient, the step's loss and a
// control element: a worker that wants the ring to pause (to let a worker
// in or out) sets it, and since every worker sees the same reduced value,
// all of them pause after the same step.
type stepper struct {
	model *nn.Model
	ring  *allreduce.Ring
	data  nn.Dataset
	// sampleIDs maps the data's indices to the training set's, which key
	// the dropout masks.
	sampleIDs   []int
	globalBatch int
	timeout     time.Duration

	// collective numbers the ring's collectives; a step may take more than
	// one (a deterministic step redone after an overflow).
	collective uint64
	batch      *nn.Batch
	// local are the step's samples (the data's indices) and global their
	// training-set ids, mapped on first use (globalIDs); keyed says the
	// model's training passes need them (dropout).
	local  []int
	global []int
	keyed  bool

	// Ordinary mode: the loss, the control element and the count of
	// workers whose gradient was not finite (the header, ordinaryHead
	// values), then the gradient buffer, reduced as one vector. The
	// header comes first so that the last bucket of an overlapped
	// reduction, the first layers', holds it too. The vector is in the
	// model's dtype, reduced32 for a float32 model (the model's
	// gradient buffer is a view of it, reduced in place), reduced for a
	// float64 one; the other is nil.
	reduced   []float64
	reduced32 []float32
	// loss is this worker's share of the step's loss, in float64: the
	// step's loss when the worker is alone.
	loss float64
	// wire32 carries a float64 model's reduced in float32 on the wire
	// when compressed (see allReduce16).
	wire32 []float32
	// comp, when not nil, compresses the ordinary mode's gradient on the
	// wire (see compress.go).
	comp *compression

	// bucketBytes, when positive and the ring has more than one worker,
	// reduces the gradient in buckets of at least that many bytes on the
	// wire while the backward pass goes on (see overlap.go).
	bucketBytes int
	// here is set when this worker's gradient was not finite in the step
	// being computed.
	here bool

	// skipNonFinite selects the non-finite policy: skip the update on
	// every replica, or fail the step with errNonFinite.
	skipNonFinite bool

	// Deterministic mode, when det is not nil.
	det *deterministic

	// backup, when not nil, receives the state before every update, so
	// that a step the ring did not complete everywhere can be undone.
	backup *nn.Snapshot

	// tl, when not nil, records the timeline.
	tl *timeline
}

// deterministic is the state of the fixed-point mode.
type deterministic struct {
	micro      int // samples per micro-batch
	totalMicro int // micro-batches per global batch
	bits       int
	rescales   int
	// acc holds the loss, the overflow count, the control element and
	// the non-finite count (detHead values), then the parameters' sums.
	acc *fixedpoint.Accumulator
}

// stepOutcome is what a step did besides its loss.
type stepOutcome struct {
	// paused: some worker asked the ring to pause after this step.
	paused bool
	// skipped: the gradient was not finite on some worker and no replica
	// applied the update; here: this worker's own batch was one.
	skipped, here bool
	// outOfRange says the deterministic mode's fixed-point sum could not
	// hold the gradient even at its coarsest resolution.
	outOfRange bool
	// sumCause, when set, says why the sum of finite gradients was not
	// finite (see stepper.sumCause).
	sumCause string
	// reduced is the size on the wire of the vectors the step reduced,
	// every collective's: a skipped step's, and a deterministic step's
	// again when it is redone at a coarser resolution.
	reduced int
}

// errNonFinite is a step whose gradient was not finite, under the stop
// policy.
type errNonFinite struct {
	step       uint64
	here       bool
	outOfRange bool
	// sumCause, when set, says why the sum of finite gradients was not
	// finite (see stepper.sumCause).
	sumCause string
	// samples are the training-set ids of this worker's batch.
	samples []int
}

func (e *errNonFinite) Error() string {
	if e.sumCause != "" {
		return fmt.Sprintf("non-finite gradient sum at step %d: every worker's gradient was finite; %s", e.step, e.sumCause)
	}
	what := "non-finite gradient (NaN or ±Inf)"
	if e.outOfRange {
		what = "non-finite gradient (beyond the fixed-point range even at its coarsest resolution)"
	}
	if e.here {
		return fmt.Sprintf("%s at step %d, from this worker's batch", what, e.step)
	}
	return fmt.Sprintf("%s at step %d, from another worker's batch", what, e.step)
}

// stepTiming is where a step's time went.
type stepTiming struct {
	compute, allreduce, optimizer time.Duration
}

// The headers' lengths: the values the reduced vectors hold before the
// gradient.
const (
	ordinaryHead = 3
	detHead      = 4
)

func newStepper(m *nn.Model, ring *allreduce.Ring, data nn.Dataset, sampleIDs []int, globalBatch int, timeout time.Duration) *stepper {
	s := &stepper{model: m, ring: ring, data: data, sampleIDs: sampleIDs, globalBatch: globalBatch, timeout: timeout,
		batch: &nn.Batch{}, keyed: m.KeysSamples()}
	p := m.NumParams()
	if m.Dtype() == "float32" {
		s.reduced32 = make([]float32, ordinaryHead+p)
		m.BindGradients32(s.reduced32[ordinaryHead:])
	} else {
		s.reduced = make([]float64, ordinaryHead+p)
		m.BindGradients(s.reduced[ordinaryHead:])
	}
	return s
}

// vecLen is the length of the ordinary mode's vector.
func (s *stepper) vecLen() int {
	if s.reduced32 != nil {
		return len(s.reduced32)
	}
	return len(s.reduced)
}

// head is value i of the ordinary mode's vector's header.
func (s *stepper) head(i int) float64 {
	if s.reduced32 != nil {
		return float64(s.reduced32[i])
	}
	return s.reduced[i]
}

// setHead sets value i of the header to x (rounded to float32 for a
// float32 model).
func (s *stepper) setHead(i int, x float64) {
	if s.reduced32 != nil {
		s.reduced32[i] = float32(x)
	} else {
		s.reduced[i] = x
	}
}

// vecFinite reports whether the loss and gradient of the ordinary mode's
// vector are finite.
func (s *stepper) vecFinite() bool {
	if s.reduced32 != nil {
		return finite(s.reduced32)
	}
	return finite(s.reduced)
}

// deterministicMode switches the stepper to exact fixed-point sums over
// micro-batches of micro samples, starting at bits fractional bits.
func (s *stepper) deterministicMode(micro, bits int) error {
	if micro < 1 || s.globalBatch%micro != 0 {
		return fmt.Errorf("micro-batch %d does not divide the global batch %d", micro, s.globalBatch)
	}
	if bits < fixedpoint.MinBits || bits > 62 {
		return fmt.Errorf("%d fixed-point bits, want %d to 62", bits, fixedpoint.MinBits)
	}
	total := s.globalBatch / micro
	s.det = &deterministic{micro: micro, totalMicro: total, bits: bits,
		acc: fixedpoint.NewAccumulator(detHead+s.model.NumParams(), bits, total)}
	return nil
}

// globalIDs returns the training set's ids of the step's samples, mapping
// them on first use: only dropout's masks and the logs need them, and
// each is a likely cache miss in a shard's ids.
func (s *stepper) globalIDs() []int {
	if len(s.global) != len(s.local) {
		s.global = s.global[:0]
		for _, i := range s.local {
			s.global = append(s.global, s.sampleIDs[i])
		}
	}
	return s.global
}

// step runs global step t on the samples local (indices into data; a whole
// number of micro-batches in deterministic mode). pause is this worker's
// control flag. The update is applied when err is nil, unless the outcome
// says skipped.
func (s *stepper) step(ctx context.Context, t uint64, local []int, pause bool) (float64, stepOutcome, stepTiming, error) {
	if cap(s.batch.Labels) < len(local) {
		s.batch.Labels = make([]int, len(local))
	}
	s.batch.Labels = s.batch.Labels[:len(local)]
	s.local, s.global = local, s.global[:0]
	if s.tl != nil {
		s.tl.step = t
	}
	if s.det != nil {
		return s.deterministicStep(ctx, t, local, pause)
	}
	var tm stepTiming
	var out stepOutcome
	t0 := time.Now()
	nn.Gather(s.data, local, s.batch)
	s.batch.IDs = nil
	if s.keyed {
		s.batch.IDs = s.globalIDs()
	}
	tg := t0
	if s.tl != nil {
		tg = time.Now() // the timeline's data phase
	}
	n := s.vecLen()
	s.setHead(1, 0)
	s.setHead(2, 0)
	s.here = false
	if pause {
		s.setHead(1, 1)
	}
	var ready func(lo, hi int)
	var bk *buckets
	if n := s.bucketValues(s.wireBytes()); n > 0 {
		bk = s.startBuckets(ctx, t, s.vecLen(), ordinaryHead, n, s.allReduce)
		bk.prepare = s.checkFinite
		ready = func(lo, hi int) { bk.add(ordinaryHead+lo, ordinaryHead+hi) }
	}
	s.loss = s.model.ScaledGradientsReady(s.batch, t, 1/float64(s.globalBatch), ready)
	s.setHead(0, s.loss)
	var err error
	if bk != nil {
		t1 := time.Now()
		s.tl.add("data", t0, tg)
		s.tl.add("forward-backward", tg, t1)
		err = bk.wait()
		tm.compute = t1.Sub(t0)
	} else {
		s.checkFinite(0, n)
		t1 := time.Now()
		s.tl.add("data", t0, tg)
		s.tl.add("forward-backward", tg, t1)
		err = s.reduce(ctx, func(ctx context.Context, c uint64) error {
			return s.allReduce(ctx, c, 0, n)
		})
		tm.compute = t1.Sub(t0)
	}
	out.here = s.here
	if err != nil {
		return 0, out, stepTiming{}, err
	}
	out.reduced = s.reducedBytes()
	t2 := time.Now()
	tm.allreduce = t2.Sub(t0) - tm.compute
	out.paused = s.head(1) > 0
	alone := s.ring.Transport().Size() == 1
	// Alone, this worker's vector is its own, already checked; a sum of
	// finite values can still overflow.
	if s.head(2) > 0 || (!alone && !s.vecFinite()) {
		if err := s.nonFinite(t, &out); err != nil {
			return 0, out, stepTiming{}, err
		}
		return math.NaN(), out, tm, nil
	}
	loss := s.head(0)
	if alone {
		// Not rounded to float32 in the header.
		loss = s.loss
	}
	loss += s.model.AddPenalties()
	s.apply()
	t3 := time.Now()
	s.tl.add("optimizer", t2, t3)
	tm.optimizer = t3.Sub(t2)
	return loss, out, tm, nil
}

// bucketValues is the number of values a bucket of the job's size holds at
// size bytes each, or 0 when the step reduces its gradient in one
// collective after the backward pass: no bucket size, no other worker, or
// a gradient that fits in one bucket.
func (s *stepper) bucketValues(size int) int {
	if s.bucketBytes <= 0 || s.ring.Transport().Size() == 1 {
		return 0
	}
	n := max(1, s.bucketBytes/size)
	if n >= s.model.NumParams() {
		// One bucket: it could only leave once the pass has ended, so
		// the step reduces its vector the ordinary way, without a
		// goroutine and its hand-overs (the Keras example's 8k values).
		return 0
	}
	return n
}

// checkFinite makes the values [lo, hi) of the ordinary mode's vector
// ready to be summed: when the loss or a gradient value among them is not
// finite, it zeroes them (the sum stays finite) and counts this worker as
// one whose gradient was not, a count every replica sees once the vector's
// start is reduced.
func (s *stepper) checkFinite(lo, hi int) {
	if s.reduced32 != nil {
		s.here = checkFinite(s.reduced32, lo, hi, s.here)
	} else {
		s.here = checkFinite(s.reduced, lo, hi, s.here)
	}
}

// checkFinite is stepper.checkFinite on the vector v; here is whether
// this worker's gradient was already found not finite, and it returns
// whether it is now.
func checkFinite[T float32 | float64](v []T, lo, hi int, here bool) bool {
	if lo == 0 && !allFinite(v[:1]) {
		v[0], here = 0, true
	}
	if g := v[max(lo, ordinaryHead):hi]; !allFinite(g) {
		clear(g)
		here = true
	}
	if here {
		v[2] = 1
	}
	return here
}

// finite reports whether the loss and gradient of an ordinary mode's
// vector are finite.
func finite[T float32 | float64](v []T) bool {
	return allFinite(v[:1]) && allFinite(v[ordinaryHead:])
}

// nonFinite applies the non-finite policy to step t: skip (every replica
// saw the same count, so every one skips) or fail.
func (s *stepper) nonFinite(t uint64, out *stepOutcome) error {
	out.sumCause = s.sumCause()
	if !s.skipNonFinite {
		return &errNonFinite{step: t, here: out.here, outOfRange: out.outOfRange, sumCause: out.sumCause, samples: slices.Clone(s.globalIDs())}
	}
	out.skipped = true
	if s.comp != nil {
		// What rounding took from a sum no replica applies is not owed
		// to the next step.
		clear(s.comp.residual)
	}
	if s.backup != nil {
		// Nothing changed: the state before the next update is this one.
		s.model.SaveSnapshot(s.backup)
	}
	return nil
}

// allFinite reports whether no value of v is NaN or ±Inf (gemm.Finite32
// reads a float32 vector 32 values at a time).
func allFinite[T float32 | float64](v []T) bool {
	if v32, ok := any(v).([]float32); ok {
		return gemm.Finite32(v32)
	}
	return gemm.Finite(v)
}

// apply keeps the backup, then updates the model (in one pass where the
// model allows, nn.Model.ApplyGradientsKeeping).
func (s *stepper) apply() {
	if s.backup != nil {
		s.model.ApplyGradientsKeeping(s.backup)
		return
	}
	s.model.ApplyGradients()
}

// reduce runs one collective with the stepper's timeout and numbering. A
// ring of one has nothing to wait for: its collective gets no deadline
// (and no timer to set and stop every step).
func (s *stepper) reduce(ctx context.Context, collective func(context.Context, uint64) error) error {
	if s.ring.Transport().Size() > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	err := collective(ctx, s.collective)
	s.collective++
	return err
}

// deterministicStep computes the gradient of each micro-batch separately,
// in a fixed order, adds them as fixed-point integers and sums those over
// the ring: every operation that touches more than one micro-batch is exact,
// so the result does not depend on how many workers share the batch.
func (s *stepper) deterministicStep(ctx context.Context, t uint64, local []int, pause bool) (float64, stepOutcome, stepTiming, error) {
	var tm stepTiming
	var out stepOutcome
	d, m := s.det, s.model
	reduceInt64 := func(ctx context.Context, c uint64, lo, hi int) error {
		return s.ring.AllReduceInt64(ctx, c, d.acc.Sum[lo:hi])
	}
	if len(local)%d.micro != 0 {
		return 0, out, tm, fmt.Errorf("step %d: %d samples are not a whole number of micro-batches of %d", t, len(local), d.micro)
	}
	for {
		t0 := time.Now()
		d.acc.Reset(d.bits, d.totalMicro)
		var loss [1]float64
		var bk *buckets
		for lo := 0; lo < len(local); lo += d.micro {
			ts := time.Now()
			nn.Gather(s.data, local[lo:lo+d.micro], s.batch)
			s.batch.IDs = s.globalIDs()[lo : lo+d.micro]
			tg := time.Now()
			// The sums are final once the last micro-batch's backward
			// pass has added a layer's gradient: that pass overlaps.
			var ready func(lo, hi int)
			if n := s.bucketValues(8); n > 0 && lo+d.micro == len(local) {
				bk = s.startBuckets(ctx, t, len(d.acc.Sum), detHead, n, reduceInt64)
				ready = func(lo, hi int) {
					s.accumulate(lo, hi)
					bk.add(detHead+lo, detHead+hi)
				}
			}
			loss[0] = m.ScaledGradientsReady(s.batch, t, 1, ready)
			if ready == nil {
				s.accumulate(0, m.NumParams())
			}
			d.acc.Add(0, loss[:])
			s.tl.add("data", ts, tg)
			s.tl.add("forward-backward", tg, time.Now())
		}
		out.here = d.acc.NonFinite > 0
		d.acc.Sum[1], d.acc.Sum[2], d.acc.Sum[3] = d.acc.Overflows, 0, d.acc.NonFinite
		if pause {
			d.acc.Sum[2] = 1
		}
		t1 := time.Now()
		var err error
		if bk != nil {
			err = bk.wait()
		} else {
			err = s.reduce(ctx, func(ctx context.Context, c uint64) error { return reduceInt64(ctx, c, 0, len(d.acc.Sum)) })
		}
		if err != nil {
			return 0, out, tm, err
		}
		out.reduced += s.reducedBytes()
		tm.compute += t1.Sub(t0)
		tm.allreduce += time.Since(t1)
		out.paused = d.acc.Sum[2] > 0
		if d.acc.Sum[3] > 0 {
			if err := s.nonFinite(t, &out); err != nil {
				return 0, out, tm, err
			}
			return math.NaN(), out, tm, nil
		}
		if d.acc.Sum[1] == 0 {
			break
		}
		// Some micro-batch gradient was out of range on some worker:
		// every worker sees the same count and coarsens together.
		if d.bits-fixedpoint.RescaleBits < fixedpoint.MinBits {
			// Out of range even at the coarsest resolution: the gradient
			// diverged, as good as infinite. Every replica saw the same
			// count, so the non-finite policy applies on all of them alike
			// (retrying would compute the same gradient).
			out.here = out.here || d.acc.Overflows > 0
			out.outOfRange = true
			if err := s.nonFinite(t, &out); err != nil {
				return 0, out, tm, err
			}
			return math.NaN(), out, tm, nil
		}
		d.bits -= fixedpoint.RescaleBits
		d.rescales++
	}
	t2 := time.Now()
	scale := 1 / float64(s.globalBatch)
	if m.Dtype() == "float32" {
		fixedpoint.Decode32(m.Grads32(), d.acc.Sum[detHead:], d.bits, scale)
	} else {
		fixedpoint.Decode(m.Grads(), d.acc.Sum[detHead:], d.bits, scale)
	}
	var loss [1]float64
	fixedpoint.Decode(loss[:], d.acc.Sum[:1], d.bits, scale)
	loss[0] += m.AddPenalties()
	s.apply()
	tm.optimizer = time.Since(t2)
	s.tl.add("optimizer", t2, t2.Add(tm.optimizer))
	return loss[0], out, tm, nil
}

// accumulate adds the gradient values [lo, hi) to the deterministic mode's
// sums, from the model's buffer in its dtype.
func (s *stepper) accumulate(lo, hi int) {
	if s.model.Dtype() == "float32" {
		s.det.acc.Add32(detHead+lo, s.model.Grads32()[lo:hi])
	} else {
		s.det.acc.Add(detHead+lo, s.model.Grads()[lo:hi])
	}
}
