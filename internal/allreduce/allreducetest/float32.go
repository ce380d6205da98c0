package allreducetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// testFloat32 reduces float32 vectors, two values to an element, for ring
// sizes 1 to 5, odd and even lengths and small segments that cut pairs
// apart: every rank's result within float32 rounding of a plain sum and
// bit-identical to the others'. A rank reducing float64 against float32
// ranks fails naming both kinds.
func testFloat32(t *testing.T, newRing NewRing) {
	for n := 1; n <= 5; n++ {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			ts := newRing(t, n)
			defer closeAll(ts)
			for _, seg := range []int{allreduce.DefaultConfig().SegmentBytes, 24} {
				rings := make([]*allreduce.Ring, n)
				for r := range rings {
					rings[r] = allreduce.New(ts[r], allreduce.Config{SegmentBytes: seg})
				}
				lengths := []int{0, 1, 2, 2*n + 1, 1001, 100_000}
				if seg < 1024 || n > 3 {
					// 1,001 values already cut every chunk into
					// dozens of segments; a longer vector only
					// repeats them, at a frame each. At the
					// default segment, 100,000 values give
					// one-segment chunks past ringtcp's 64 KiB
					// copy threshold, even ones at N = 2 and
					// uneven ones at N = 3; more ranks only
					// make the same frames smaller.
					lengths = lengths[:5]
				}
				for i, length := range lengths {
					step := uint64(100*seg + i)
					checkFloat32(t, rings, step, length, allreduce.Op(i%2), rand.New(rand.NewPCG(uint64(n), uint64(length))))
				}
			}
		})
	}
	t.Run("KindMismatch", func(t *testing.T) {
		ts := newRing(t, 3)
		defer closeAll(ts)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errs := runAll(3, func(r int) error {
			ring := allreduce.New(ts[r], allreduce.DefaultConfig())
			if r == 1 {
				return ring.AllReduce(ctx, 0, make([]float64, 10), allreduce.Sum)
			}
			return ring.AllReduceFloat32(ctx, 0, make([]float32, 20), allreduce.Sum)
		})
		named := false
		for r, err := range errs {
			if err == nil {
				t.Fatalf("rank %d reduced float64 against float32 without error", r)
			}
			named = named || (strings.Contains(err.Error(), "float32") && strings.Contains(err.Error(), "float64"))
		}
		if !named {
			t.Fatalf("no rank named both kinds: %v", errs)
		}
	})
}

func checkFloat32(t *testing.T, rings []*allreduce.Ring, step uint64, length int, op allreduce.Op, rng *rand.Rand) {
	t.Helper()
	n := len(rings)
	inputs := make([][]float32, n)
	want := make([]float64, length)
	bound := make([]float64, length)
	for r := range inputs {
		inputs[r] = make([]float32, length)
		for i := range inputs[r] {
			x := float32(rng.NormFloat64() * math.Exp2(float64(rng.IntN(20)-10)))
			inputs[r][i] = x
			want[i] += float64(x)
			bound[i] += math.Abs(float64(x))
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
	errs := runAll(n, func(r int) error { return rings[r].AllReduceFloat32(ctx, step, inputs[r], op) })
	for r, err := range errs {
		if err != nil {
			t.Fatalf("length %d: rank %d: %v", length, r, err)
		}
	}
	for i := range want {
		if d := math.Abs(float64(inputs[0][i]) - want[i]); d > 2e-7*float64(n)*bound[i] {
			t.Fatalf("length %d, element %d: got %v, want %v", length, i, inputs[0][i], want[i])
		}
		for r := 1; r < n; r++ {
			if math.Float32bits(inputs[r][i]) != math.Float32bits(inputs[0][i]) {
				t.Fatalf("length %d, element %d: rank %d has %v, rank 0 has %v", length, i, r, inputs[r][i], inputs[0][i])
			}
		}
	}
}
