// Package fixedpoint makes gradient sums independent of how they are
// grouped, by adding exact integers instead of floats.
//
// # Numerics
//
// A value g becomes the int64 q = round(g·2^F) (see round), F being the
// number of
// fractional bits (DefaultBits, 40). The resolution is 2^−F (9.1e−13 at
// F = 40): each converted value is within half of that of g. Integer addition
// is exact and associative, so the sum of any number of converted values is
// the same whatever the order or grouping, on any machine; converting the
// sum back, Σq·2^−F, is one rounding, also order-free.
//
// Range: a job adds M contributions per element (its micro-batches), so each
// converted value must stay below Limit(M) = 2^(62−⌈log₂M⌉) in magnitude,
// which guarantees that no partial sum can overflow int64; at F = 40 and
// M ≤ 1024 a micro-batch gradient element may reach 2^12 = 4096. A value
// outside the range, or NaN or ±Inf, is never converted: the Accumulator
// counts it as an overflow and the caller must not use the sum. The trainer
// then lowers F by RescaleBits on every replica (the decision depends only
// on the data, not on the number of workers) and repeats the step; below
// MinBits it stops with an error. Integer sums over the network are checked
// as well (allreduce.ErrOverflow), so an overflow is never silent.
package fixedpoint

import (
	"math"
	"math/bits"
)

// Bit budgets.
const (
	// DefaultBits is the initial number of fractional bits.
	DefaultBits = 40
	// RescaleBits is how many bits an overflow costs.
	RescaleBits = 8
	// MinBits is the coarsest resolution the trainer accepts.
	MinBits = 8
)

// Limit is the largest magnitude a converted value may have when m values
// are summed: 2^(62−⌈log₂m⌉).
func Limit(m int) int64 {
	if m < 1 {
		m = 1
	}
	return int64(1) << (62 - bits.Len(uint(m-1)))
}

// Accumulator sums float vectors as fixed-point integers.
type Accumulator struct {
	bits  int
	scale float64 // 2^bits
	limit float64 // Limit(m) as a float
	// Sum holds the running sums.
	Sum []int64
	// Overflows counts finite values out of range, NonFinite the NaN and
	// infinite ones; neither is added.
	Overflows, NonFinite int64
}

// NewAccumulator returns an accumulator for vectors of n values with the
// given fractional bits, for sums of up to m contributions.
func NewAccumulator(n, fracBits, m int) *Accumulator {
	a := &Accumulator{Sum: make([]int64, n)}
	a.Reset(fracBits, m)
	return a
}

// Reset zeroes the sums and the overflow count and sets the resolution.
func (a *Accumulator) Reset(fracBits, m int) {
	clear(a.Sum)
	a.Overflows, a.NonFinite = 0, 0
	a.bits = fracBits
	a.scale = math.Ldexp(1, fracBits)
	a.limit = float64(Limit(m))
}

// Bits is the accumulator's number of fractional bits.
func (a *Accumulator) Bits() int { return a.bits }

// Add converts g and adds it to Sum[off:off+len(g)]. Values out of range
// are counted in Overflows, NaN and infinite ones in NonFinite; neither is
// added.
func (a *Accumulator) Add(off int, g []float64) {
	sum := a.Sum[off : off+len(g)]
	k := [3]float64{a.scale, a.limit, 0.5}
	for len(g) > 0 {
		// Eight at a time in AVX-512 (four in AVX2), bit-identical to
		// addScalar, up to the first group with a value out of range,
		// which the scalar loop takes.
		if useAVX512 && len(g) >= 8 {
			n := add8(&sum[0], &g[0], len(g)&^7, &k)
			sum, g = sum[n:], g[n:]
		} else if useAVX2 && len(g) >= 4 {
			n := add4(&sum[0], &g[0], len(g)&^3, &k)
			sum, g = sum[n:], g[n:]
		}
		n := min(len(g), 8)
		a.addScalar(sum[:n], g[:n])
		sum, g = sum[n:], g[n:]
	}
}

// addScalar is Add for the values g, one at a time, into sum.
func (a *Accumulator) addScalar(sum []int64, g []float64) {
	for i, x := range g {
		y := x * a.scale
		if !(math.Abs(y) < a.limit) { // also catches NaN
			if math.IsNaN(x) || math.IsInf(x, 0) {
				a.NonFinite++
			} else {
				a.Overflows++
			}
			continue
		}
		sum[i] += round(y)
	}
}

// round is y to the nearest integer, halves away from zero, computed
// without branches (gradients' signs and fractions are unpredictable) as
// trunc(y ± 0.5). Adding 0.5 can itself round when |y| ≥ 2^51, moving the
// result by one unit of 2^−F at most; the function is deterministic all the
// same, which is what the sums need.
func round(y float64) int64 {
	return int64(y + math.Copysign(0.5, y))
}

// Decode writes sum·2^−bits·factor into dst, for sums produced with that
// many fractional bits.
func Decode(dst []float64, sum []int64, fracBits int, factor float64) {
	f := math.Ldexp(factor, -fracBits)
	for i, q := range sum[:len(dst)] {
		dst[i] = float64(q) * f
	}
}

// Add32 is Add for float32 values: each is widened to float64, exactly, so
// the sums are those Add gives for the widened vector.
func (a *Accumulator) Add32(off int, g []float32) {
	if !useAVX2 {
		a.addWidened(off, g)
		return
	}
	sum := a.Sum[off : off+len(g)]
	k := [3]float64{a.scale, a.limit, 0.5}
	var buf [8]float64
	for len(g) > 0 {
		// Four at a time, as in Add, widened in the vector registers.
		if len(g) >= 4 {
			n := add4f32(&sum[0], &g[0], len(g)&^3, &k)
			sum, g = sum[n:], g[n:]
		}
		n := min(len(g), len(buf))
		for i, x := range g[:n] {
			buf[i] = float64(x)
		}
		a.addScalar(sum[:n], buf[:n])
		sum, g = sum[n:], g[n:]
	}
}

// addWidened is Add32 through Add, widening the values a block at a time.
func (a *Accumulator) addWidened(off int, g []float32) {
	var buf [512]float64
	for len(g) > 0 {
		n := min(len(g), len(buf))
		for i, x := range g[:n] {
			buf[i] = float64(x)
		}
		a.Add(off, buf[:n])
		off, g = off+n, g[n:]
	}
}

// Decode32 is Decode into float32: each value is computed in float64 as
// Decode computes it, then rounded once.
func Decode32(dst []float32, sum []int64, fracBits int, factor float64) {
	f := math.Ldexp(factor, -fracBits)
	for i, q := range sum[:len(dst)] {
		dst[i] = float32(float64(q) * f)
	}
}
