package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"ringtrain/internal/allreduce"
)

// Overlap of the all-reduce with the backward pass.
//
// The backward pass writes the layers' gradients last layer first (see
// nn.Model.ScaledGradientsReady). With a bucket size set, the stepper
// groups the ranges it reports into buckets, contiguous runs of whole
// layers of at least that many bytes on the wire, as PyTorch's
// DistributedDataParallel and Horovod's tensor fusion do, and a
// communication goroutine reduces each full bucket, as a collective of its
// own, while the earlier layers still compute. The last bucket holds the
// first layers and the step's header (the loss and the control counts,
// which the reduced vector keeps before the gradient for that reason), and
// leaves only once the pass has ended.
//
// Every worker cuts the same buckets (the cut depends on the model and the
// bucket size only) and reduces them in the same order, each as the next
// collective of the ring, so the frames of different buckets never mix.
// An integer sum does not depend on where a bucket begins, so the
// deterministic mode's result is bit-identical with and without overlap.
// A float sum's order does: which rank starts the sum of an element
// depends on the element's position in its collective, so with three or
// more workers the float modes round differently (as finely as any sum
// order does); with two, a sum of two values has one order, and they are
// bit-identical too.

// buckets is one step's bucketed reduction: the open bucket on the
// compute goroutine's side, the communication goroutine on the other.
type buckets struct {
	// min is the fewest values a bucket closes with.
	min int
	// lo and hi bound the open bucket in the reduced vector: ranges are
	// added below lo. A bucket reaching floor, where the gradient begins,
	// stays open: it is the last, and takes the header below floor.
	lo, hi, floor int
	// prepare, when not nil, runs on the compute goroutine on a bucket's
	// values before it is handed over.
	prepare func(lo, hi int)
	queue   chan [2]int
	// stopped is closed when the communication goroutine returns, with
	// err set if it failed.
	stopped chan struct{}
	err     error
}

// bucketQueue is how many buckets may wait for the communication
// goroutine before the compute goroutine waits: as many as the pass can
// get ahead by without holding memory.
const bucketQueue = 16

// startBuckets starts a bucketed reduction of a vector of n values, a
// header of head values then the gradient, whose buckets close at min
// values: the communication goroutine reduces the
// buckets handed to it with reduce, in order, each as the stepper's next
// collective, until wait is called, a reduction fails or ctx ends. t is the
// training step, for errors.
func (s *stepper) startBuckets(ctx context.Context, t uint64, n, head, min int, reduce func(ctx context.Context, c uint64, lo, hi int) error) *buckets {
	b := &buckets{min: min, lo: n, hi: n, floor: head, queue: make(chan [2]int, bucketQueue), stopped: make(chan struct{})}
	go func() {
		defer close(b.stopped)
		first := s.ring.Frames()
		for k := 0; ; k++ {
			var r [2]int
			select {
			case next, ok := <-b.queue:
				if !ok {
					return
				}
				r = next
			case <-ctx.Done():
				b.err = fmt.Errorf("step %d, gradient bucket %d: %w", t, k, context.Cause(ctx))
				return
			}
			before := s.ring.Frames()
			err := s.reduce(ctx, func(ctx context.Context, c uint64) error { return reduce(ctx, c, r[0], r[1]) })
			if err != nil {
				// The frames received count the step's, not the
				// bucket's: the coordinator takes the member that
				// received fewest as starved first (see
				// allreduce.Error), and neighbours may fail a bucket
				// apart.
				if ae := (*allreduce.Error)(nil); errors.As(err, &ae) {
					ae.Received += int(before - first)
				}
				b.err = fmt.Errorf("step %d, gradient bucket %d (values %d to %d): %w", t, k, r[0], r[1], err)
				return
			}
			if r[0] == 0 {
				// The bucket holding the vector's start is the last (see
				// wait): the step is reduced, whatever the context does
				// before the queue is closed.
				return
			}
		}
	}()
	return b
}

// add extends the open bucket down to lo (the range added must end where
// the bucket begins) and hands it over once it holds min values.
func (b *buckets) add(lo, hi int) {
	if hi != b.lo {
		panic(fmt.Sprintf("worker: gradient range [%d, %d) added to a bucket beginning at %d", lo, hi, b.lo))
	}
	b.lo = lo
	if b.hi-b.lo >= b.min && b.lo > b.floor {
		b.send()
	}
}

// send hands the open bucket over, unless it is empty or the
// communication goroutine has stopped (wait then returns why).
func (b *buckets) send() {
	if b.lo == b.hi {
		return
	}
	if b.prepare != nil {
		b.prepare(b.lo, b.hi)
	}
	select {
	case b.queue <- [2]int{b.lo, b.hi}:
		// Let the communication goroutine start the collective, its first
		// frames sent, before the pass goes on: with one P (a worker
		// given one core) it would otherwise wait for the pass to end.
		runtime.Gosched()
	case <-b.stopped:
	}
	b.hi = b.lo
}

// wait hands over the rest of the vector, from its start to the open
// bucket's end, as the last bucket, and returns once every bucket is
// reduced or the reduction failed.
func (b *buckets) wait() error {
	b.lo = 0
	b.send()
	close(b.queue)
	<-b.stopped
	return b.err
}
