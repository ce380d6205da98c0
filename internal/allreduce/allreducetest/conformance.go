// Package allreducetest is the conformance suite every allreduce.Transport
// must pass: sums and averages against a plain sum for ring sizes 1 to 8 and
// awkward lengths, bit-identical results on every rank, and prompt, named
// errors for mismatched ranks, dead peers and deadlines.
package allreducetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// NewRing builds n connected transports, rank i at index i. The suite closes
// them.
type NewRing func(t *testing.T, n int) []allreduce.Transport

// Run runs the whole suite.
func Run(t *testing.T, newRing NewRing) {
	t.Run("SumAndAverage", func(t *testing.T) { testSumAndAverage(t, newRing) })
	t.Run("SmallSegments", func(t *testing.T) { testSmallSegments(t, newRing) })
	t.Run("Float32", func(t *testing.T) { testFloat32(t, newRing) })
	t.Run("Half16", func(t *testing.T) { testHalf16(t, newRing) })
	t.Run("Int64ExactSum", func(t *testing.T) { testInt64(t, newRing) })
	t.Run("Int64Overflow", func(t *testing.T) { testInt64Overflow(t, newRing) })
	t.Run("LengthMismatch", func(t *testing.T) { testMismatch(t, newRing, "length") })
	t.Run("StepMismatch", func(t *testing.T) { testMismatch(t, newRing, "step") })
	t.Run("KindMismatch", func(t *testing.T) { testMismatch(t, newRing, "kind") })
	t.Run("PeerDies", func(t *testing.T) { testPeerDies(t, newRing) })
	t.Run("Deadline", func(t *testing.T) { testDeadline(t, newRing) })
}

// failWithin is how long a failure may take to reach every rank.
const failWithin = 5 * time.Second

func closeAll(ts []allreduce.Transport) {
	for _, tr := range ts {
		tr.Close()
	}
}

// runAll runs f on every rank concurrently and returns the errors by rank.
func runAll(n int, f func(rank int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := 0; r < n; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = f(r)
		}()
	}
	wg.Wait()
	return errs
}

func testSumAndAverage(t *testing.T, newRing NewRing) {
	for n := 1; n <= 8; n++ {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			ts := newRing(t, n)
			defer closeAll(ts)
			rings := make([]*allreduce.Ring, n)
			for r := range rings {
				rings[r] = allreduce.New(ts[r], allreduce.DefaultConfig())
			}
			// 100,003 values: chunks of several segments at N ≤ 3, a
			// length no ring size divides. From N = 4 on a chunk of it
			// is one segment, as one of 10,007 values (prime) is, which
			// costs a tenth. (SmallSegments cuts chunks into many
			// segments at every N.)
			long := 100_003
			if n > 3 {
				long = 10_007
			}
			lengths := []int{0, 1, max(n-1, 0), n, long}
			for i, length := range lengths {
				op := allreduce.Op(i % 2)
				checkReduce(t, rings, uint64(i), length, op, rand.New(rand.NewPCG(uint64(n), uint64(length))))
			}
		})
	}
}

// checkReduce runs one collective of the given length and compares every
// rank's result with a plain sum, and the ranks with each other.
func checkReduce(t *testing.T, rings []*allreduce.Ring, step uint64, length int, op allreduce.Op, rng *rand.Rand) {
	t.Helper()
	n := len(rings)
	inputs := make([][]float64, n)
	want := make([]float64, length)
	bound := make([]float64, length) // Σ|x|, for the rounding tolerance
	for r := range inputs {
		inputs[r] = make([]float64, length)
		for i := range inputs[r] {
			x := rng.NormFloat64() * math.Exp2(float64(rng.IntN(20)-10))
			inputs[r][i] = x
			want[i] += x
			bound[i] += math.Abs(x)
		}
	}
	if op == allreduce.Average {
		for i := range want {
			want[i] /= float64(n)
			bound[i] /= float64(n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := runAll(n, func(r int) error { return rings[r].AllReduce(ctx, step, inputs[r], op) })
	for r, err := range errs {
		if err != nil {
			t.Fatalf("length %d: rank %d: %v", length, r, err)
		}
	}
	for i := range want {
		if d := math.Abs(inputs[0][i] - want[i]); d > 1e-14*float64(n)*bound[i] {
			t.Fatalf("length %d, element %d: got %v, want %v", length, i, inputs[0][i], want[i])
		}
		for r := 1; r < n; r++ {
			if math.Float64bits(inputs[r][i]) != math.Float64bits(inputs[0][i]) {
				t.Fatalf("length %d, element %d: rank %d has %v, rank 0 has %v", length, i, r, inputs[r][i], inputs[0][i])
			}
		}
	}
}

// testSmallSegments forces many segments per chunk, so the pipelining of
// segments across rounds is exercised.
func testSmallSegments(t *testing.T, newRing NewRing) {
	for _, n := range []int{2, 3, 5} {
		ts := newRing(t, n)
		rings := make([]*allreduce.Ring, n)
		for r := range rings {
			rings[r] = allreduce.New(ts[r], allreduce.Config{SegmentBytes: 64})
		}
		for step, length := range []int{1000, 37, 8*n + 3} {
			checkReduce(t, rings, uint64(step), length, allreduce.Sum, rand.New(rand.NewPCG(9, uint64(step))))
		}
		closeAll(ts)
	}
}

// testMismatch gives rank 2 of 4 a different length or step. Every rank must
// fail promptly, and the rank that noticed must say what differed.
func testMismatch(t *testing.T, newRing NewRing, what string) {
	const n = 4
	ts := newRing(t, n)
	defer closeAll(ts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	errs := runAll(n, func(r int) error {
		length, step := 100, uint64(7)
		if r == 2 && what == "length" {
			length = 99
		}
		if r == 2 && what == "step" {
			step = 8
		}
		ring := allreduce.New(ts[r], allreduce.DefaultConfig())
		var err error
		if r == 2 && what == "kind" {
			err = ring.AllReduceInt64(ctx, step, make([]int64, length))
		} else {
			err = ring.AllReduce(ctx, step, make([]float64, length), allreduce.Sum)
		}
		if err != nil {
			ts[r].Close() // as a worker does after a failed collective
		}
		return err
	})
	if d := time.Since(start); d > failWithin {
		t.Fatalf("failure took %v to reach every rank", d)
	}
	want := map[string]string{"length": "reduces a vector of length", "step": "is at step", "kind": "of int64"}[what]
	named := false
	for r, err := range errs {
		if err == nil {
			t.Fatalf("rank %d succeeded despite the %s mismatch", r, what)
		}
		if strings.Contains(err.Error(), want) {
			named = true
		}
		t.Logf("rank %d: %v", r, err)
	}
	if !named {
		t.Fatalf("no rank reported the %s mismatch (%q)", what, want)
	}
}

// dyingTransport closes itself after sending a number of frames, as a
// process killed in the middle of a collective.
type dyingTransport struct {
	allreduce.Transport
	framesLeft int
}

var errKilled = errors.New("killed by the test")

func (d *dyingTransport) Send(ctx context.Context, f *allreduce.Frame) error {
	if d.framesLeft == 0 {
		d.Transport.Close()
		return errKilled
	}
	d.framesLeft--
	return d.Transport.Send(ctx, f)
}

// testPeerDies kills rank 1 of 5 during the reduce-scatter of a vector large
// enough to need several frames. Every other rank must fail within
// failWithin, and rank 1's neighbours must name it.
func testPeerDies(t *testing.T, newRing NewRing) {
	const n = 5
	ts := newRing(t, n)
	defer closeAll(ts)
	ts[1] = &dyingTransport{Transport: ts[1], framesLeft: 3}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	errs := runAll(n, func(r int) error {
		err := allreduce.New(ts[r], allreduce.Config{SegmentBytes: 1024}).AllReduce(ctx, 1, make([]float64, 5000), allreduce.Sum)
		if err != nil {
			ts[r].Close()
		}
		return err
	})
	if d := time.Since(start); d > failWithin {
		t.Fatalf("failure took %v to reach every rank", d)
	}
	for r, err := range errs {
		if err == nil {
			t.Fatalf("rank %d succeeded although rank 1 died", r)
		}
		t.Logf("rank %d: %v", r, err)
	}
	if !strings.Contains(errs[2].Error(), "rank 1") {
		t.Fatalf("rank 2, right of the dead rank, does not name it: %v", errs[2])
	}
	var e *allreduce.Error
	if !errors.As(errs[2], &e) || e.Phase != "reduce-scatter" {
		t.Fatalf("rank 2's error %v does not name the reduce-scatter phase", errs[2])
	}
}

// testDeadline leaves rank 0 out of a collective: the others must give up
// at their deadline and name a neighbour they were waiting for.
func testDeadline(t *testing.T, newRing NewRing) {
	const n = 3
	ts := newRing(t, n)
	defer closeAll(ts)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	errs := runAll(n, func(r int) error {
		if r == 0 {
			return nil
		}
		return allreduce.New(ts[r], allreduce.DefaultConfig()).AllReduce(ctx, 1, make([]float64, 10), allreduce.Sum)
	})
	if d := time.Since(start); d > failWithin {
		t.Fatalf("deadline of 300ms took %v", d)
	}
	for r := 1; r < n; r++ {
		if !errors.Is(errs[r], context.DeadlineExceeded) {
			t.Fatalf("rank %d: %v, want a deadline error", r, errs[r])
		}
	}
	// Rank 1 waits for frames from rank 0.
	if !strings.Contains(errs[1].Error(), "receive from rank 0") {
		t.Fatalf("rank 1's error does not name rank 0: %v", errs[1])
	}
	// Both were waiting when the deadline passed: rank 1 from the start,
	// after no frame, rank 2 after rank 1's first.
	var e1, e2 *allreduce.Error
	if !errors.As(errs[1], &e1) || !errors.As(errs[2], &e2) {
		t.Fatalf("errors %v, %v: want *allreduce.Error", errs[1], errs[2])
	}
	if e1.Received != 0 || e2.Received != 1 || e1.Waiting < 250*time.Millisecond || e2.Waiting <= 0 {
		t.Fatalf("rank 1 waited %v after %d frames, rank 2 %v after %d; want rank 1 ≈300ms after 0, rank 2 waiting after 1",
			e1.Waiting, e1.Received, e2.Waiting, e2.Received)
	}
}

// testInt64 checks that integer sums are exact for every ring size, with
// values large enough that float64 would round them.
func testInt64(t *testing.T, newRing NewRing) {
	for _, n := range []int{1, 2, 3, 5, 8} {
		ts := newRing(t, n)
		rng := rand.New(rand.NewPCG(uint64(n), 64))
		const length = 1000
		inputs := make([][]int64, n)
		want := make([]int64, length)
		for r := range inputs {
			inputs[r] = make([]int64, length)
			for i := range inputs[r] {
				x := rng.Int64N(1<<58) - 1<<57
				inputs[r][i] = x
				want[i] += x
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		errs := runAll(n, func(r int) error {
			return allreduce.New(ts[r], allreduce.Config{SegmentBytes: 512}).AllReduceInt64(ctx, 1, inputs[r])
		})
		cancel()
		for r, err := range errs {
			if err != nil {
				t.Fatalf("N=%d rank %d: %v", n, r, err)
			}
			for i := range want {
				if inputs[r][i] != want[i] {
					t.Fatalf("N=%d rank %d element %d: %d, want %d", n, r, i, inputs[r][i], want[i])
				}
			}
		}
		closeAll(ts)
	}
}

// testInt64Overflow makes one element's sum overflow: every rank must fail,
// and the rank that added it must say so.
func testInt64Overflow(t *testing.T, newRing NewRing) {
	const n = 3
	ts := newRing(t, n)
	defer closeAll(ts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	errs := runAll(n, func(r int) error {
		v := []int64{1, math.MaxInt64 / 2, 3}
		err := allreduce.New(ts[r], allreduce.DefaultConfig()).AllReduceInt64(ctx, 4, v)
		if err != nil {
			ts[r].Close()
		}
		return err
	})
	if d := time.Since(start); d > failWithin {
		t.Fatalf("overflow took %v to reach every rank", d)
	}
	overflowed := false
	for r, err := range errs {
		if err == nil {
			t.Fatalf("rank %d accepted an overflowing sum", r)
		}
		if errors.Is(err, allreduce.ErrOverflow) || strings.Contains(err.Error(), "int64 overflow") {
			overflowed = true
		}
	}
	if !overflowed {
		t.Fatalf("no rank reported the overflow: %v", errs)
	}
}
