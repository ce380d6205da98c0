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

// testHalf16 reduces vectors compressed to float16 and bfloat16 for ring
// sizes 1 to 5, lengths that leave elements part full, 0 to 3 exact
// values, and small segments that cut the vector everywhere: every rank's
// result equals, bit for bit, the rounded sum computed along the ring's
// order (float32 sums, rounded to 16 bits at every hop and at the end),
// and the ranks' results are identical. With error feedback, what each
// rank's residual keeps plus the result gives the exact sum back, to
// float32 rounding; across a run of collectives, the mean result converges
// to the true sum where plain rounding keeps its bias. Rank 1 reducing
// float32 or the other 16-bit kind against the others fails naming both
// kinds.
func testHalf16(t *testing.T, newRing NewRing) {
	for n := 1; n <= 5; n++ {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			ts := newRing(t, n)
			defer closeAll(ts)
			step := uint64(0)
			for _, seg := range []int{allreduce.DefaultConfig().SegmentBytes, 24} {
				rings := make([]*allreduce.Ring, n)
				for r := range rings {
					rings[r] = allreduce.New(ts[r], allreduce.Config{SegmentBytes: seg})
				}
				for _, k := range []allreduce.Kind{allreduce.Float16, allreduce.BFloat16} {
					for i, length := range []int{0, 1, 4, 5, 4*n + 3, 1001, 10_000} {
						if length > 1001 && (seg < 100 || n > 3) {
							// Small segments: as many frames as a
							// larger vector would take. More than 3
							// ranks: the same one-segment chunks as
							// N = 2 and 3 sent, only smaller.
							continue
						}
						for _, exact := range []int{0, 1, 2, 3} {
							if exact > length || (length > 100 && exact%3 != 0) {
								continue // long ones: with and without exact values
							}
							step++
							rng := rand.New(rand.NewPCG(uint64(n), uint64(length+exact)))
							checkHalf16(t, rings, step, length, exact, k, allreduce.Op(i%2), rng)
						}
					}
				}
			}
		})
	}
	t.Run("Feedback", func(t *testing.T) { testFeedback(t, newRing) })
	for _, other := range []allreduce.Kind{allreduce.Float32, allreduce.BFloat16} {
		t.Run("Against"+strings.ToUpper(other.String()[:1])+other.String()[1:], func(t *testing.T) {
			ts := newRing(t, 3)
			defer closeAll(ts)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errs := runAll(3, func(r int) error {
				ring := allreduce.New(ts[r], allreduce.DefaultConfig())
				var err error
				switch {
				case r != 1:
					err = ring.AllReduce16(ctx, 0, make([]float32, 40), allreduce.Sum, allreduce.Compression{Kind: allreduce.Float16})
				case other == allreduce.Float32:
					err = ring.AllReduceFloat32(ctx, 0, make([]float32, 20), allreduce.Sum)
				default:
					err = ring.AllReduce16(ctx, 0, make([]float32, 40), allreduce.Sum, allreduce.Compression{Kind: other})
				}
				if err != nil {
					ts[r].Close()
				}
				return err
			})
			named := false
			for r, err := range errs {
				if err == nil {
					t.Fatalf("rank %d reduced float16 against %v without error", r, other)
				}
				named = named || (strings.Contains(err.Error(), "of float16") && strings.Contains(err.Error(), "of "+other.String()))
			}
			if !named {
				t.Fatalf("no rank named both kinds: %v", errs)
			}
		})
	}
}

// ringOrder16 computes what AllReduce16 must leave in every rank: each
// element's chunk c is summed starting at rank c, in float32, rounded to
// the kind at every hop; the rank before c completes it, averages it and
// rounds it. Exact values are summed the same way without rounding.
func ringOrder16(inputs [][]float32, exact int, k allreduce.Kind, op allreduce.Op) []float32 {
	n, length := len(inputs), len(inputs[0])
	xElems := (exact + 1) / 2
	elems := xElems + (length-exact+3)/4
	round := func(x float32, i int) float32 {
		if i < exact {
			return x
		}
		return allreduce.Round16(k, x)
	}
	out := make([]float32, length)
	for i := range out {
		e := i / 2
		if i >= exact {
			e = xElems + (i-exact)/4
		}
		c := 0
		for (c+1)*elems/n <= e {
			c++
		}
		s := round(inputs[c][i], i)
		for h := 1; h < n; h++ {
			s += inputs[(c+h)%n][i]
			if h < n-1 {
				s = round(s, i)
			}
		}
		if op == allreduce.Average {
			s *= 1 / float32(n)
		}
		out[i] = round(s, i)
	}
	return out
}

func checkHalf16(t *testing.T, rings []*allreduce.Ring, step uint64, length, exact int, k allreduce.Kind, op allreduce.Op, rng *rand.Rand) {
	t.Helper()
	n := len(rings)
	inputs := make([][]float32, n)
	for r := range inputs {
		inputs[r] = make([]float32, length)
		for i := range inputs[r] {
			inputs[r][i] = float32(rng.NormFloat64() * math.Exp2(float64(rng.IntN(30)-20)))
		}
	}
	want := ringOrder16(inputs, exact, k, op)
	if n == 1 {
		want = append([]float32(nil), inputs[0]...) // nothing travels, nothing is rounded
	}
	exactSum := make([]float64, length)
	bound := make([]float64, length) // Σ|x|, for float32's rounding
	for _, in := range inputs {
		for i, x := range in {
			exactSum[i] += float64(x)
			bound[i] += math.Abs(float64(x))
		}
	}
	residuals := make([][]float32, n)
	for r := range residuals {
		residuals[r] = make([]float32, length-exact)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := runAll(n, func(r int) error {
		return rings[r].AllReduce16(ctx, step, inputs[r], op, allreduce.Compression{Kind: k, Exact: exact, Residual: residuals[r]})
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("%v, length %d, %d exact: rank %d: %v", k, length, exact, r, err)
		}
	}
	scale := 1.0
	if op == allreduce.Average {
		scale = float64(n)
	}
	for i := range want {
		for r := range n {
			if math.Float32bits(inputs[r][i]) != math.Float32bits(want[i]) {
				t.Fatalf("%v, length %d, %d exact, %v: element %d: rank %d has %v, want %v", k, length, exact, op, i, r, inputs[r][i], want[i])
			}
		}
		if i < exact {
			continue
		}
		// What travelled plus what the ranks kept back is the sum, to
		// float32 rounding (2^-24 per addition, on values within a few
		// times the largest input).
		kept := 0.0
		for r := range n {
			kept += float64(residuals[r][i-exact])
		}
		got := float64(want[i])*scale + kept
		if d := math.Abs(got - exactSum[i]); d > 4*float64(n)*0x1p-24*bound[i] {
			t.Fatalf("%v, length %d, %d exact: element %d: result %v and residuals %v give %v, want %v", k, length, exact, i, want[i], kept, got, exactSum[i])
		}
	}
}

// testFeedback reduces the same vector 64 times on 3 ranks with and
// without error feedback: with it, the mean of the results is within a
// sixteenth of a 16-bit rounding step of the true sum (what is kept back
// is given back later); without it, every result carries the same
// rounding error.
func testFeedback(t *testing.T, newRing NewRing) {
	const n, rounds, length = 3, 64, 100
	ts := newRing(t, n)
	defer closeAll(ts)
	rings := make([]*allreduce.Ring, n)
	for r := range rings {
		rings[r] = allreduce.New(ts[r], allreduce.DefaultConfig())
	}
	rng := rand.New(rand.NewPCG(5, 6))
	inputs := make([][]float32, n)
	sum := make([]float64, length)
	for r := range inputs {
		inputs[r] = make([]float32, length)
		for i := range inputs[r] {
			x := float32(1 + rng.Float64())
			inputs[r][i] = x
			sum[i] += float64(x)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	step := uint64(0)
	for _, k := range []allreduce.Kind{allreduce.Float16, allreduce.BFloat16} {
		ulp := 0x1p-8 // the largest rounding step of sums in [3, 6)
		if k == allreduce.BFloat16 {
			ulp = 0x1p-5
		}
		for _, feedback := range []bool{true, false} {
			residuals := make([][]float32, n)
			mean := make([]float64, length)
			for r := range residuals {
				if feedback {
					residuals[r] = make([]float32, length)
				}
			}
			v := make([][]float32, n)
			for range rounds {
				step++
				errs := runAll(n, func(r int) error {
					v[r] = append(v[r][:0], inputs[r]...)
					return rings[r].AllReduce16(ctx, step, v[r], allreduce.Sum, allreduce.Compression{Kind: k, Residual: residuals[r]})
				})
				for r, err := range errs {
					if err != nil {
						t.Fatalf("rank %d: %v", r, err)
					}
				}
				for i := range mean {
					mean[i] += float64(v[0][i]) / rounds
				}
			}
			worst := 0.0
			for i := range mean {
				worst = max(worst, math.Abs(mean[i]-sum[i]))
			}
			switch {
			case feedback && worst > ulp/16:
				t.Errorf("%v with error feedback: the mean of %d results is off the sum by up to %g, want ≤ %g", k, rounds, worst, ulp/16)
			case !feedback && worst < ulp/8:
				t.Errorf("%v without error feedback: the mean is off by at most %g; the test's inputs do not show rounding (want ≥ %g)", k, worst, ulp/8)
			}
			t.Logf("%v, feedback %v: mean off the sum by up to %g (rounding step %g)", k, feedback, worst, ulp)
		}
	}
}
