package allreduce

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refToFloat16 rounds x to float16 the slow, obvious way: the nearest of
// the two float16 magnitudes around |x| (found by search over all of
// them), ties to the even bit pattern, and Inf from 65520 (the midpoint
// between 65504 and 2^16) up.
func refToFloat16(x float32) uint16 {
	if x != x {
		u := math.Float32bits(x)
		return 0x7e00 | uint16(u>>16)&0x8000 | uint16(u>>13)&0x3ff
	}
	sign := uint16(0)
	if math.Signbit(float64(x)) {
		sign = 0x8000
	}
	a := math.Abs(float64(x))
	if a >= 65520 {
		return sign | 0x7c00
	}
	// Finite positive float16s are ordered like their bits, 0 to 0x7bff.
	lo, hi := uint16(0), uint16(0x7bff)
	for lo < hi { // the last h with value(h) ≤ a
		mid := (lo + hi + 1) / 2
		if float64(widenFloat16(mid)) <= a {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	h := lo
	if h == 0x7bff {
		return sign | h // a < 65520: rounds down
	}
	below, above := a-float64(widenFloat16(h)), float64(widenFloat16(h+1))-a
	if above < below || (above == below && h&1 == 1) {
		h++
	}
	return sign | h
}

// refToBFloat16 rounds x to bfloat16 in float64 arithmetic.
func refToBFloat16(x float32) uint16 {
	u := math.Float32bits(x)
	if x != x {
		return uint16(u>>16) | 0x40
	}
	down := math.Float32frombits(u &^ 0xffff)
	up := math.Float32frombits((u &^ 0xffff) + 0x10000) // may be ±Inf
	below := math.Abs(float64(x) - float64(down))
	above := math.Abs(float64(up) - float64(x))
	if math.IsInf(float64(up), 0) {
		// The midpoint to the next power of two decides, as if the
		// exponent were unbounded.
		above = math.Abs(math.Ldexp(math.Copysign(1, float64(x)), 128) - float64(x))
	}
	if u&0xffff == 0 || below < above || (below == above && (u>>16)&1 == 0) {
		return uint16(u >> 16)
	}
	return uint16(u>>16) + 1
}

// TestFloat16Exhaustive widens every one of the 65536 float16 values and
// narrows it back to the same bits (NaNs made quiet, payload and sign
// kept),
// and narrows every rounding boundary (the float32 midpoint between two
// neighbouring float16s, and the float32s either side of it) as the
// reference does: round to nearest, ties to even, at every exponent,
// subnormals and the overflow to Inf included.
func TestFloat16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := fromFloat16(h)
		if f != widenFloat16(h) && f == f {
			t.Fatalf("table %#04x: %v, want %v", h, f, widenFloat16(h))
		}
		back := toFloat16(f)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if f == f || back != h|0x200 {
				t.Fatalf("NaN %#04x widened to %v, narrowed to %#04x", h, f, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x (%v) narrowed back to %#04x", h, f, back)
		}
		if h&0x7fff >= 0x7c00 {
			continue
		}
		// Between h and its successor (for 0x7bff: 2^16, the first
		// value past the largest finite one).
		next := 65536.0
		if h&0x7fff < 0x7bff {
			next = math.Abs(float64(fromFloat16(h&0x7fff + 1)))
		}
		mid := float32((math.Abs(float64(f)) + next) / 2) // exact: 12 significant bits
		if math.Signbit(float64(f)) {
			mid = -mid
		}
		m := math.Float32bits(mid)
		for _, x := range []float32{mid, math.Float32frombits(m - 1), math.Float32frombits(m + 1)} {
			if got, want := toFloat16(x), refToFloat16(x); got != want {
				t.Fatalf("toFloat16(%v = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
			}
		}
	}
}

// TestFloat16Edges narrows the float32 values where conversions go wrong:
// zeros, float32 subnormals, float16's subnormal range and its bottom
// (2^-25 ties to zero, anything above rounds up to 2^-24), the largest
// finite value, the overflow boundary, Inf and NaNs with any payload.
func TestFloat16Edges(t *testing.T) {
	cases := []struct {
		x    float32
		want uint16
	}{
		{0, 0},
		{float32(math.Copysign(0, -1)), 0x8000},
		{math.SmallestNonzeroFloat32, 0},
		{-math.SmallestNonzeroFloat32, 0x8000},
		{0x1p-25, 0},
		{math.Nextafter32(0x1p-25, 1), 1},
		{0x1p-24, 1},
		{0x1.8p-24, 2}, // 1.5 units: tie to even 2
		{0x1.4p-23, 2}, // 2.5 units: tie to even 2
		{0x1p-14, 0x0400},
		{math.Nextafter32(0x1p-14, 0), 0x0400},
		{0x3ffp-24, 0x03ff},
		{1, 0x3c00},
		{1 + 0x1p-11, 0x3c00},                // tie to even
		{1 + 0x3p-11, 0x3c02},                // tie to even, upwards
		{65504, 0x7bff},                      // largest finite
		{math.Nextafter32(65520, 0), 0x7bff}, // just below the midpoint
		{65520, 0x7c00},                      // midpoint: ties to even, Inf
		{-65520, 0xfc00},
		{1e30, 0x7c00},
		{math.MaxFloat32, 0x7c00},
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{math.Float32frombits(0x7f800001), 0x7e00}, // signalling NaN, tiny payload
		{math.Float32frombits(0xffc00000), 0xfe00},
		{math.Float32frombits(0x7fffffff), 0x7fff},
		{math.Float32frombits(0xff802000), 0xfe01}, // signalling, payload kept
	}
	for _, c := range cases {
		if got := toFloat16(c.x); got != c.want {
			t.Errorf("toFloat16(%v = %#08x) = %#04x, want %#04x", c.x, math.Float32bits(c.x), got, c.want)
		}
		if ref := refToFloat16(c.x); ref != c.want {
			t.Errorf("reference(%v) = %#04x, want %#04x", c.x, ref, c.want)
		}
	}
}

// TestFloat16Random narrows a million random float32 bit patterns, every
// exponent equally likely, as the reference does.
func TestFloat16Random(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		x := math.Float32frombits(rng.Uint32())
		if got, want := toFloat16(x), refToFloat16(x); got != want {
			t.Fatalf("toFloat16(%v = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
}

// TestBFloat16Exhaustive widens every bfloat16 and narrows it back to the
// same bits (NaNs stay NaNs of the same sign), and narrows every rounding
// boundary between neighbours (the midpoint and the float32s either side)
// and a million random float32s as the reference does.
func TestBFloat16Exhaustive(t *testing.T) {
	check := func(x float32) {
		if got, want := toBFloat16(x), refToBFloat16(x); got != want {
			t.Fatalf("toBFloat16(%v = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
	for i := range 1 << 16 {
		h := uint16(i)
		f := fromBFloat16(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("%#04x widened to %#08x", h, math.Float32bits(f))
		}
		back := toBFloat16(f)
		if f != f {
			if back&0x8000 != h&0x8000 || fromBFloat16(back) == fromBFloat16(back) {
				t.Fatalf("NaN %#04x narrowed back to %#04x", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x (%v) narrowed back to %#04x", h, f, back)
		}
		if h&0x7f80 == 0x7f80 {
			continue // ±Inf
		}
		mid := uint32(h)<<16 | 0x8000
		for _, u := range []uint32{mid, mid - 1, mid + 1, uint32(h)<<16 | 0xffff} {
			check(math.Float32frombits(u))
		}
	}
	for _, u := range []uint32{0x7f7f8000, 0x7f7fffff, 0xff7f8000, 0x7f800001, 0xff800001, 0x00000001, 0x80008000} {
		check(math.Float32frombits(u))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		check(math.Float32frombits(rng.Uint32()))
	}
}

// TestNarrowLost checks error feedback's bookkeeping: what narrowing
// takes, added to what travels, gives each value back exactly, and a
// value that narrows to Inf (beyond float16's range) or is NaN adds
// nothing.
func TestNarrowLost(t *testing.T) {
	v := []float32{1 + 0x1p-12, -3.14159, 1e-6, 7e-8, 70000, float32(math.NaN()), 0.1}
	for _, k := range []Kind{Float16, BFloat16} {
		lost := make([]float32, len(v))
		b := make([]byte, 2*len(v))
		narrow16(k, b, v, lost, 1)
		got := make([]float32, len(v))
		widen16(k, got, b)
		for i, x := range v {
			if math.IsInf(float64(got[i]), 0) || got[i] != got[i] {
				if lost[i] != 0 {
					t.Errorf("%v: %v narrowed to %v lost %v, want 0", k, x, got[i], lost[i])
				}
				continue
			}
			if got[i]+lost[i] != x {
				t.Errorf("%v: %v narrowed to %v + lost %v", k, x, got[i], lost[i])
			}
		}
		r := append([]float32(nil), v...)
		lost2 := make([]float32, len(v))
		round16(k, r, lost2, 1)
		for i := range v {
			if math.Float32bits(r[i]) != math.Float32bits(got[i]) || lost2[i] != lost[i] {
				t.Errorf("%v: round16(%v) = %v lost %v; the wire carries %v lost %v", k, v[i], r[i], lost2[i], got[i], lost[i])
			}
		}
	}
}

func BenchmarkHalf(b *testing.B) {
	v := make([]float32, 1<<16)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 1e-3)
	}
	buf := make([]byte, 2*len(v))
	lost := make([]float32, len(v))
	for _, k := range []Kind{Float16, BFloat16} {
		b.Run("narrow/"+k.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(v)))
			for b.Loop() {
				narrow16(k, buf, v, nil, 1)
			}
		})
		b.Run("narrowLost/"+k.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(v)))
			for b.Loop() {
				narrow16(k, buf, v, lost, 1)
			}
		})
		b.Run("widenAdd/"+k.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(v)))
			for b.Loop() {
				widenAdd16(k, v, buf)
			}
		})
	}
}

// boundaryInputs returns every value of kind k widened, and for each the
// float32s at and around the rounding boundary above it, 65,536 random
// float32 bit patterns, and every value of kind k again, in a run: the
// inputs on which the vector and scalar conversions must agree.
func boundaryInputs(k Kind) []float32 {
	var xs []float32
	for i := range 1 << 16 {
		var f float32
		if k == BFloat16 {
			f = fromBFloat16(uint16(i))
		} else {
			f = fromFloat16(uint16(i))
		}
		u := math.Float32bits(f)
		xs = append(xs, f)
		if f != f || math.IsInf(float64(f), 0) {
			continue
		}
		var mid uint32
		if k == BFloat16 {
			mid = u | 0x8000
		} else {
			next := fromFloat16(uint16(i) + 1)
			mid = math.Float32bits(float32((float64(f) + float64(next)) / 2))
		}
		xs = append(xs, math.Float32frombits(mid-1), math.Float32frombits(mid), math.Float32frombits(mid+1))
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 1 << 16 {
		xs = append(xs, math.Float32frombits(rng.Uint32()))
	}
	// Runs of values narrowing loses nothing of, as the all-gather sends.
	for i := range 1 << 16 {
		if f := fromFloat16(uint16(i)); k == Float16 && f == f {
			xs = append(xs, f)
		} else if f := fromBFloat16(uint16(i)); k == BFloat16 && f == f {
			xs = append(xs, f)
		}
	}
	return append(xs, 1, 2, 3) // a tail the scalar loop takes
}

// TestVectorConversionsMatchScalar runs narrow16 (with and without error
// feedback), round16 (with scale 1 and 3), widen16 and widenAdd16, which take the eight-lane assembly
// where the CPU allows, on every 16-bit value, every rounding boundary
// and 65,536 random float32s (every sign and exponent, many times over):
// bit for bit what the scalar conversions give, NaNs included.
func TestVectorConversionsMatchScalar(t *testing.T) {
	if !useSIMD {
		t.Log("no AVX2 and F16C: narrow16 and widen16 are the scalar loops")
	}
	for _, k := range []Kind{Float16, BFloat16} {
		xs := boundaryInputs(k)
		b := make([]byte, 2*len(xs))
		lost := make([]float32, len(xs))
		rng := rand.New(rand.NewPCG(9, 10))
		for i := range lost {
			lost[i] = float32(rng.NormFloat64())
		}
		before := append([]float32(nil), lost...)
		narrow16(k, b, xs, lost, 1)
		plain := make([]byte, len(b))
		narrow16(k, plain, xs, nil, 1)
		for i, x := range xs {
			var h uint16
			var r float32
			if k == BFloat16 {
				h = toBFloat16(x)
				r = fromBFloat16(h)
			} else {
				h = toFloat16(x)
				r = half16[h]
			}
			want := before[i]
			if d := x - r; d-d == 0 {
				want += d
			}
			got := uint16(b[2*i]) | uint16(b[2*i+1])<<8
			if got != h || uint16(plain[2*i])|uint16(plain[2*i+1])<<8 != h {
				t.Fatalf("%v: narrowing %#08x gave %#04x (without feedback %#04x), want %#04x", k, math.Float32bits(x), got,
					uint16(plain[2*i])|uint16(plain[2*i+1])<<8, h)
			}
			if math.Float32bits(lost[i]) != math.Float32bits(want) {
				t.Fatalf("%v: narrowing %#08x kept %v, want %v", k, math.Float32bits(x), lost[i], want)
			}
		}
		rounded := append([]float32(nil), xs...)
		kept := append([]float32(nil), before...)
		round16(k, rounded, kept, 1)
		for i := range xs {
			w := widenOf(k, plain[2*i:])
			if math.Float32bits(rounded[i]) != math.Float32bits(w) || math.Float32bits(kept[i]) != math.Float32bits(lost[i]) {
				t.Fatalf("%v: rounding %#08x gave %v, kept %v; the wire carries %v, keeps %v", k, math.Float32bits(xs[i]), rounded[i], kept[i], w, lost[i])
			}
		}
		// Averaging's scale: what is kept is in units of the sum.
		scaled := append([]float32(nil), before...)
		round16(k, append([]float32(nil), xs...), scaled, 3)
		for i, x := range xs {
			want := before[i]
			if d := (x - widenOf(k, plain[2*i:])) * 3; d-d == 0 {
				want += d
			}
			if math.Float32bits(scaled[i]) != math.Float32bits(want) {
				t.Fatalf("%v: rounding %#08x with scale 3 kept %v, want %v", k, math.Float32bits(x), scaled[i], want)
			}
		}
		all := make([]byte, 2<<16+6)
		for i := range 1<<16 + 3 {
			all[2*i], all[2*i+1] = byte(i), byte(i>>8)
		}
		wide := make([]float32, 1<<16+3)
		widen16(k, wide, all)
		sum := make([]float32, len(wide))
		for i := range sum {
			sum[i] = 1
		}
		widenAdd16(k, sum, all)
		for i, f := range wide {
			h := uint16(i)
			want := half16[h]
			if k == BFloat16 {
				want = fromBFloat16(h)
			}
			if math.Float32bits(f) != math.Float32bits(want) {
				t.Fatalf("%v: widening %#04x gave %#08x, want %#08x", k, h, math.Float32bits(f), math.Float32bits(want))
			}
			if s := 1 + want; math.Float32bits(sum[i]) != math.Float32bits(s) && (s == s || sum[i] == sum[i]) {
				t.Fatalf("%v: adding %#04x to 1 gave %v, want %v", k, h, sum[i], s)
			}
		}
	}
}

// widenOf is the value of the little-endian 16-bit value at b[0:2].
func widenOf(k Kind, b []byte) float32 {
	h := uint16(b[0]) | uint16(b[1])<<8
	if k == BFloat16 {
		return fromBFloat16(h)
	}
	return half16[h]
}
