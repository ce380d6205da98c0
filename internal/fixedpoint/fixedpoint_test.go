package fixedpoint

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSumIndependentOfGrouping adds the same values in different orders and
// groupings: the integer sums are identical, the float sums are not.
func TestSumIndependentOfGrouping(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const m, n = 24, 500
	vals := make([][]float64, m)
	for i := range vals {
		vals[i] = make([]float64, n)
		for j := range vals[i] {
			vals[i][j] = r.NormFloat64() * math.Exp2(float64(r.IntN(30)-20))
		}
	}
	ref := NewAccumulator(n, DefaultBits, m)
	for _, v := range vals {
		ref.Add(0, v)
	}
	floatDiffers := false
	for _, workers := range []int{2, 3, 4, 8} {
		// Each worker sums its own contributions, backwards; then the
		// partial sums are added in reverse worker order.
		parts := make([]*Accumulator, workers)
		for w := range parts {
			parts[w] = NewAccumulator(n, DefaultBits, m)
			per := m / workers
			for i := (w+1)*per - 1; i >= w*per; i-- {
				parts[w].Add(0, vals[i])
			}
		}
		total := make([]int64, n)
		for w := workers - 1; w >= 0; w-- {
			for j := range total {
				total[j] += parts[w].Sum[j]
			}
		}
		for j := range total {
			if total[j] != ref.Sum[j] {
				t.Fatalf("%d workers, element %d: %d, want %d", workers, j, total[j], ref.Sum[j])
			}
		}
		var fa, fb float64
		for i := 0; i < m; i++ {
			fa += vals[i][7]
			fb += vals[m-1-i][7]
		}
		floatDiffers = floatDiffers || fa != fb
	}
	if !floatDiffers {
		t.Log("the float sums happened to agree; the integer check still stands")
	}
	got := make([]float64, n)
	Decode(got, ref.Sum, DefaultBits, 1)
	for j := range got {
		var exact float64
		for i := range vals {
			exact += vals[i][j]
		}
		if math.Abs(got[j]-exact) > float64(m)*math.Ldexp(1, -DefaultBits) {
			t.Fatalf("element %d decodes to %v, float sum %v: beyond the resolution", j, got[j], exact)
		}
	}
}

// TestOverflowIsCounted feeds extreme and non-finite values: they are
// counted, not added.
func TestOverflowIsCounted(t *testing.T) {
	a := NewAccumulator(4, DefaultBits, 1024)
	limit := float64(Limit(1024)) / math.Ldexp(1, DefaultBits) // 4096 at 40 bits
	a.Add(0, []float64{limit * 0.99, -limit * 0.99, 1, 2})
	if a.Overflows != 0 {
		t.Fatalf("%d overflows for values inside the range", a.Overflows)
	}
	a.Add(0, []float64{limit * 1.01, math.Inf(-1), math.NaN(), 1e300})
	if a.Overflows != 2 || a.NonFinite != 2 {
		t.Fatalf("%d overflows and %d non-finite values, want 2 and 2", a.Overflows, a.NonFinite)
	}
	// The guarantee: m values at the limit never overflow int64.
	var s int64
	for i := 0; i < 1024; i++ {
		next := s + Limit(1024) - 1
		if next < s {
			t.Fatalf("sum overflowed after %d values at the limit", i)
		}
		s = next
	}
	// Rescaling brings the extreme value into range.
	a.Reset(DefaultBits-RescaleBits, 1024)
	a.Add(0, []float64{limit * 1.01})
	if a.Overflows != 0 {
		t.Fatal("a rescaled accumulator still overflows")
	}
}

func TestLimit(t *testing.T) {
	for _, c := range []struct {
		m    int
		want int64
	}{{1, 1 << 62}, {2, 1 << 61}, {3, 1 << 60}, {4, 1 << 60}, {24, 1 << 57}, {1024, 1 << 52}} {
		if got := Limit(c.m); got != c.want {
			t.Errorf("Limit(%d) = %d, want %d", c.m, got, c.want)
		}
	}
}

func TestRounding(t *testing.T) {
	a := NewAccumulator(6, 1, 1) // resolution 0.5: y = 2x
	a.Add(0, []float64{0.2, 0.25, -0.25, 0.3, -0.8, 1e6})
	want := []int64{0, 1, -1, 1, -2, 2e6} // 0.4→0, 0.5→1, −0.5→−1, 0.6→1, −1.6→−2
	for i := range want {
		if a.Sum[i] != want[i] {
			t.Fatalf("element %d: %d, want %d", i, a.Sum[i], want[i])
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	g := make([]float64, 8070)
	for i := range g {
		if i%3 == 0 {
			g[i] = float64(i%13-6) * 1e-3
		}
	}
	a := NewAccumulator(len(g), DefaultBits, 24)
	for i := 0; i < b.N; i++ {
		a.Add(0, g)
	}
}

func BenchmarkAdd32(b *testing.B) {
	g := make([]float32, 8070)
	for i := range g {
		if i%3 == 0 {
			g[i] = float32(i%13-6) * 1e-3
		}
	}
	a := NewAccumulator(len(g), DefaultBits, 24)
	for i := 0; i < b.N; i++ {
		a.Add32(0, g)
	}
}

// vectorPaths are the vector conversions this machine can run, by name,
// each with the switches that select it.
func vectorPaths() map[string][2]bool {
	paths := map[string][2]bool{}
	if useAVX512 {
		paths["avx512"] = [2]bool{true, false}
	}
	if useAVX512 || useAVX2 {
		// Every AVX-512 machine has AVX2.
		paths["avx2"] = [2]bool{false, true}
	}
	return paths
}

// withPath runs f with the vector switches set to p ({AVX-512, AVX2}),
// restoring them afterwards.
func withPath(p [2]bool, f func()) {
	old512, old2 := useAVX512, useAVX2
	defer func() { useAVX512, useAVX2 = old512, old2 }()
	useAVX512, useAVX2 = p[0], p[1]
	f()
}

var scalarPath = [2]bool{false, false}

// testValues are n gradients for an accumulator with F fractional bits and
// limit l: random ones of every magnitude in and out of the range, from
// subnormals up, with specials mixed in: halves after scaling (ties), the
// range's edges, the magnitudes where adding 0.5 rounds, NaN, ±Inf, −0.
func testValues(r *rand.Rand, n, fracBits int, limit float64) []float64 {
	scale := math.Ldexp(1, fracBits)
	var specials []float64
	for _, y := range []float64{0, 0.5, 1.5, 2.5, 1e6 + 0.5, 0.49999999999999994, 1 << 51, 1<<51 + 0.5,
		1<<52 + 1, 1<<53 - 1, 1 << 53, 1<<53 + 2, limit, math.Nextafter(limit, 0), math.Nextafter(limit, 2*limit)} {
		specials = append(specials, y/scale, -y/scale)
	}
	specials = append(specials, math.SmallestNonzeroFloat64, -0x1p-1060, math.Copysign(0, -1),
		math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64)
	g := make([]float64, n)
	for i := range g {
		switch r.IntN(4) {
		case 0:
			g[i] = specials[r.IntN(len(specials))]
		case 1:
			// Any bit pattern with an exponent up to twice the limit's.
			e := uint64(r.IntN(1023 + 64 - fracBits))
			g[i] = math.Float64frombits(r.Uint64()&(1<<63|1<<52-1) | e<<52)
		default:
			g[i] = r.NormFloat64() * math.Ldexp(1, r.IntN(30)-20)
		}
	}
	return g
}

// TestVectorAddMatchesScalar checks each vector Add this machine runs
// against the scalar loop, bit for bit and count for count, on testValues
// at every position of vectors of every length up to 17 and a long one,
// several resolutions and limits.
func TestVectorAddMatchesScalar(t *testing.T) {
	paths := vectorPaths()
	if len(paths) == 0 {
		t.Skip("no vector conversion on this machine")
	}
	r := rand.New(rand.NewPCG(15, 16))
	for name, path := range paths {
		for _, c := range []struct{ bits, m int }{{DefaultBits, 1024}, {DefaultBits, 1}, {8, 3}, {0, 1}} {
			for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 63, 64, 1001} {
				for range 20 {
					g := testValues(r, n, c.bits, float64(Limit(c.m)))
					var accs [2]*Accumulator
					for k, p := range [][2]bool{path, scalarPath} {
						withPath(p, func() {
							accs[k] = NewAccumulator(n+3, c.bits, c.m)
							accs[k].Add(3, g)
							accs[k].Add(0, g[:min(n, 3)])
						})
					}
					v, s := accs[0], accs[1]
					if v.Overflows != s.Overflows || v.NonFinite != s.NonFinite {
						t.Fatalf("%s, F=%d, m=%d, n=%d: counts %d/%d vectorised, %d/%d scalar",
							name, c.bits, c.m, n, v.Overflows, v.NonFinite, s.Overflows, s.NonFinite)
					}
					for i := range v.Sum {
						if v.Sum[i] != s.Sum[i] {
							t.Fatalf("%s, F=%d, m=%d, n=%d: sum %d is %d vectorised, %d scalar (%v)",
								name, c.bits, c.m, n, i, v.Sum[i], s.Sum[i], g)
						}
					}
				}
			}
		}
	}
}

// TestAdd32MatchesAdd: float32 values add as their exact float64 widening
// does in the scalar loop, overflows and non-finite values counted alike,
// across the chunks Add32 widens, whichever conversion Add32 uses; and on
// testValues rounded to float32, at every length up to 17.
func TestAdd32MatchesAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	g := make([]float32, 1300)
	for i := range g {
		g[i] = float32(r.NormFloat64() * 100)
	}
	g[7], g[600], g[1299] = float32(math.Inf(1)), float32(math.NaN()), 1e30
	paths := vectorPaths()
	paths["scalar"] = scalarPath
	widen := func(g []float32) []float64 {
		g64 := make([]float64, len(g))
		for i, x := range g {
			g64[i] = float64(x)
		}
		return g64
	}
	var a *Accumulator
	for name, path := range paths {
		for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17} {
			for range 50 {
				g := make([]float32, n)
				for i, x := range testValues(r, n, 20, float64(Limit(2))) {
					g[i] = float32(x)
				}
				a, b := NewAccumulator(n+1, 20, 2), NewAccumulator(n+1, 20, 2)
				withPath(path, func() { a.Add32(1, g) })
				withPath(scalarPath, func() { b.Add(1, widen(g)) })
				if !slices.Equal(a.Sum, b.Sum) || a.Overflows != b.Overflows || a.NonFinite != b.NonFinite {
					t.Fatalf("%s: Add32 differs from scalar Add on %v: %v, want %v, overflows %d/%d, non-finite %d/%d",
						name, g, a.Sum, b.Sum, a.Overflows, b.Overflows, a.NonFinite, b.NonFinite)
				}
			}
		}
		b := NewAccumulator(len(g)+2, DefaultBits, 4)
		a = NewAccumulator(len(g)+2, DefaultBits, 4)
		withPath(path, func() { a.Add32(2, g) })
		withPath(scalarPath, func() { b.Add(2, widen(g)) })
		if !slices.Equal(a.Sum, b.Sum) || a.Overflows != b.Overflows || a.NonFinite != b.NonFinite {
			t.Fatalf("%s: Add32 differs from Add on the widened values: overflows %d/%d, non-finite %d/%d",
				name, a.Overflows, b.Overflows, a.NonFinite, b.NonFinite)
		}
		if a.Overflows != 1 || a.NonFinite != 2 {
			t.Fatalf("%s: overflows %d, non-finite %d, want 1 and 2", name, a.Overflows, a.NonFinite)
		}
	}
	d32, d64 := make([]float32, len(g)), make([]float64, len(g))
	Decode32(d32, a.Sum[2:], DefaultBits, 0.25)
	Decode(d64, a.Sum[2:], DefaultBits, 0.25)
	for i := range d32 {
		if d32[i] != float32(d64[i]) {
			t.Fatalf("Decode32[%d] = %v, Decode rounded %v", i, d32[i], float32(d64[i]))
		}
	}
}
