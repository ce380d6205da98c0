package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// naive computes op(A)·op(B) + beta·C in float64.
func naive(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			out[i*n+j] = s + float64(beta)*float64(c[i*ldc+j])
		}
	}
	return out
}

func random(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestSgemmMatchesNaive checks every transpose combination, β of 0, 1 and
// 0.5, padded strides, and sizes on and off the tile and block edges,
// against a float64 reference, with the assembly kernel and the Go one.
//
// The float64 product is computed once for the three kernels and the three
// β (under -race, nine times over took most of the package's time).
func TestSgemmMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := [][3]int{{1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {5, 15, 300}, {150, 40, 9}, {13, 70, 257}, {300, 64, 288}, {2, 4100, 5}}
	saved, savedWide := useAsm, useAVX512
	defer func() { useAsm, useAVX512 = saved, savedWide }()
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				lda, ldb, ldc := k+3, n+1, n+2
				ar, br := m, k
				if ta {
					lda, ar = m+2, k
				}
				if tb {
					ldb, br = k+1, n
				}
				a, b := random(r, ar*lda), random(r, br*ldb)
				product := naive(ta, tb, m, n, k, a, lda, b, ldb, 0, make([]float32, m*ldc), ldc)
				for _, kern := range []struct{ asm, wide bool }{{true, true}, {true, false}, {false, false}} {
					if kern.asm && !saved || kern.wide && !savedWide {
						continue
					}
					useAsm, useAVX512 = kern.asm, kern.wide
					for _, beta := range []float32{0, 1, 0.5} {
						name := fmt.Sprintf("asm=%v/avx512=%v/%dx%dx%d/tA=%v/tB=%v/beta=%v", kern.asm, kern.wide, m, n, k, ta, tb, beta)
						c := random(r, m*ldc)
						want := slices.Clone(product)
						for i := range m {
							for j := range n {
								want[i*n+j] += float64(beta) * float64(c[i*ldc+j])
							}
						}
						Sgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)
						for i := range m {
							for j := range n {
								got, w := float64(c[i*ldc+j]), want[i*n+j]
								if math.Abs(got-w) > 1e-4*math.Sqrt(float64(k))*(1+math.Abs(w)) {
									t.Fatalf("%s: C[%d][%d] = %v, want %v", name, i, j, got, w)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestSgemmReadsOnePanelInPlace checks the products whose B is a single
// panel already in the packed layout (32 columns, row stride 32), which
// the kernel reads in place, across blocks of the inner dimension.
func TestSgemmReadsOnePanelInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, sz := range [][3]int{{13, nr, 300}, {9, nr, 1000}, {6, nr, 1}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			lda := k
			if ta {
				lda = m
			}
			a, b, c := random(r, m*k), random(r, k*n), random(r, m*n)
			want := naive(ta, false, m, n, k, a, lda, b, n, 1, c, n)
			Sgemm(ta, false, m, n, k, a, lda, b, n, 1, c, n)
			for i, w := range want {
				if got := float64(c[i]); math.Abs(got-w) > 1e-4*math.Sqrt(float64(k))*(1+math.Abs(w)) {
					t.Fatalf("%v ta=%v: C[%d] = %v, want %v", sz, ta, i, got, w)
				}
			}
		}
	}
}

func TestSgemmPanicsOnShortSlices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short A")
		}
	}()
	Sgemm(false, false, 4, 4, 4, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
}

// BenchmarkSgemm measures the products of the CNN's second convolution at
// batch 32 (3872 windows of 288 values, 64 filters): forward, kernel
// gradient and input gradient.
func BenchmarkSgemm(b *testing.B) {
	const m, k, n = 3872, 288, 64
	r := rand.New(rand.NewPCG(3, 4))
	col, kern, dz := random(r, m*k), random(r, k*n), random(r, m*n)
	z, dk, dcol := make([]float32, m*n), make([]float32, k*n), make([]float32, m*k)
	for _, c := range []struct {
		name string
		run  func()
	}{
		{"forward", func() { Sgemm(false, false, m, n, k, col, k, kern, n, 0, z, n) }},
		{"kernel-gradient", func() { Sgemm(true, false, k, n, m, col, k, dz, n, 0, dk, n) }},
		{"input-gradient", func() { Sgemm(false, true, m, k, n, dz, n, kern, n, 0, dcol, k) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			cpu := cpuSeconds()
			for range b.N {
				c.run()
			}
			reportFlops(b, 2*m*n*k*float64(b.N), cpu)
		})
	}
}

func TestVectorHelpers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 3, 4, 7, 8, 9, 31, 100} {
		a, b := random(r, n), random(r, n)
		want := make([]float32, n)
		for i := range want {
			want[i] = a[i] + b[i]
		}
		Add(a, b)
		for i := range want {
			if a[i] != want[i] {
				t.Fatalf("Add, n=%d: [%d] = %v, want %v", n, i, a[i], want[i])
			}
		}
		d := make([]float64, n)
		for i := range d {
			d[i] = r.NormFloat64()
		}
		f := make([]float32, n)
		FromFloat64(f, d)
		back := make([]float64, n)
		ToFloat64(back, f)
		for i := range d {
			if f[i] != float32(d[i]) || back[i] != float64(f[i]) {
				t.Fatalf("conversions, n=%d: [%d] %v → %v → %v", n, i, d[i], f[i], back[i])
			}
		}
	}
}

// TestBiasAndGradientPasses checks WidenBias and NarrowGrad against plain
// loops, bit for bit, with and without assembly, on rows whose length the
// assembly takes (8) and does not (6), with negative, zero and NaN values.
func TestBiasAndGradientPasses(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	asm := useAsm
	defer func() { useAsm = asm }()
	for _, withAsm := range []bool{false, asm} {
		useAsm = withAsm
		for _, n := range []int{6, 8} {
			for _, relu := range []bool{false, true} {
				const rows = 5
				src, bias := random(r, rows*n), make([]float64, n)
				y, dy := make([]float64, rows*n), make([]float64, rows*n)
				for i := range bias {
					bias[i] = r.NormFloat64()
				}
				for i := range y {
					y[i], dy[i] = r.NormFloat64(), r.NormFloat64()
				}
				src[3], y[4], dy[7], y[9] = float32(math.NaN()), math.NaN(), math.NaN(), 0
				got := make([]float64, rows*n)
				WidenBias(got, src, bias, relu)
				dz, db := make([]float32, rows*n), make([]float64, n)
				NarrowGrad(dz, db, y, dy, relu)
				wantDB := make([]float64, n)
				for i := range got {
					x := float64(src[i]) + bias[i%n]
					if relu && x < 0 {
						x = 0
					}
					g := dy[i]
					if relu && !(y[i] > 0) {
						g = 0
					}
					wantDB[i%n] += g
					if math.Float64bits(got[i]) != math.Float64bits(x) || math.Float32bits(dz[i]) != math.Float32bits(float32(g)) {
						t.Fatalf("asm %v, n %d, relu %v, value %d: WidenBias %v want %v, NarrowGrad %v want %v",
							withAsm, n, relu, i, got[i], x, dz[i], float32(g))
					}
				}
				for j := range db {
					if math.Float64bits(db[j]) != math.Float64bits(wantDB[j]) {
						t.Fatalf("asm %v, n %d, relu %v: bias gradient %d is %v, want %v", withAsm, n, relu, j, db[j], wantDB[j])
					}
				}
			}
		}
	}
}

// TestAVX512MatchesAVX2 checks that the AVX-512 kernel and the AVX2 one
// give bit-identical products (the same fused multiply-adds in the same
// order), on sizes on and off the tile edges.
func TestAVX512MatchesAVX2(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512 on this machine")
	}
	defer func() { useAVX512 = true }()
	r := rand.New(rand.NewPCG(13, 14))
	for _, sz := range [][3]int{{6, 32, 1}, {13, 70, 257}, {300, 64, 288}, {9, 32, 1000}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			a, b := random(r, m*k), random(r, k*n)
			lda := k
			if ta {
				lda = m
			}
			var c [2][]float32
			for i, wide := range []bool{true, false} {
				useAVX512 = wide
				c[i] = random(r, m*n)
				Sgemm(ta, false, m, n, k, a, lda, b, n, 0, c[i], n)
			}
			for i := range c[0] {
				if math.Float32bits(c[0][i]) != math.Float32bits(c[1][i]) {
					t.Fatalf("%v ta=%v: element %d is %v with AVX-512, %v with AVX2", sz, ta, i, c[0][i], c[1][i])
				}
			}
		}
	}
}

// TestSplitIsBitIdentical checks that a product split across cores gives
// exactly the one-core result, for every transpose combination and for
// row counts that do and do not divide into the bands.
func TestSplitIsBitIdentical(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewPCG(7, 8))
	for _, sz := range [][3]int{{256, 512, 784}, {101, 300, 257}, {784, 130, 256}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				a, b := random(r, m*k), random(r, k*n)
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				var want []float32
				for _, procs := range []int{1, 2, 3, 8} {
					runtime.GOMAXPROCS(procs)
					if procs > 1 && split(m, n, k) < 2 {
						t.Fatalf("%v on %d cores is not split", sz, procs)
					}
					c := random(r, m*n)
					Sgemm(ta, tb, m, n, k, a, lda, b, ldb, 0, c, n)
					if want == nil {
						want = c
						continue
					}
					for i := range c {
						if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%v ta=%v tb=%v: element %d is %v on %d cores, %v on one", sz, ta, tb, i, c[i], procs, want[i])
						}
					}
				}
			}
		}
	}
}

// TestAdamUpdateMatchesGo checks the assembly Adam update against the Go
// loop bit for bit, over several steps, on lengths the assembly takes
// whole and in part.
func TestAdamUpdateMatchesGo(t *testing.T) {
	if !useAsm {
		t.Skip("no assembly on this machine")
	}
	defer func() { useAsm = true }()
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 4, 7, 64, 1001} {
		var state [2][3][]float64 // [asm, go][p, m, v]
		for i := range state[0] {
			state[0][i] = make([]float64, n)
			for j := range state[0][i] {
				state[0][i][j] = r.NormFloat64()
			}
			state[0][i][0] = 0
			state[1][i] = append([]float64(nil), state[0][i]...)
		}
		for j := range state[0][2] { // v ≥ 0
			state[0][2][j] = math.Abs(state[0][2][j])
			state[1][2][j] = state[0][2][j]
		}
		for step := range 3 {
			g := make([]float64, n)
			for j := range g {
				g[j] = r.NormFloat64() * float64(step+1)
			}
			for k, asm := range []bool{true, false} {
				useAsm = asm
				s := state[k]
				AdamUpdate(s[0], g, s[1], s[2], 0.1, 0.001, 0.0007, 1e-7)
			}
			for i, name := range []string{"parameter", "m", "v"} {
				for j := range n {
					if math.Float64bits(state[0][i][j]) != math.Float64bits(state[1][i][j]) {
						t.Fatalf("n=%d step %d: %s %d is %v in assembly, %v in Go", n, step, name, j, state[0][i][j], state[1][i][j])
					}
				}
			}
		}
	}
}

// TestAdamUpdate32MatchesGo is TestAdamUpdateMatchesGo for AdamUpdate32.
func TestAdamUpdate32MatchesGo(t *testing.T) {
	if !useAsm {
		t.Skip("no assembly on this machine")
	}
	defer func() { useAsm = true }()
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{1, 8, 13, 64, 1001} {
		var state [2][3][]float32 // [asm, go][p, m, v]
		for i := range state[0] {
			state[0][i] = make([]float32, n)
			for j := range state[0][i] {
				state[0][i][j] = float32(r.NormFloat64())
			}
			state[0][i][0] = 0
			if i == 2 { // v ≥ 0
				for j := range state[0][i] {
					state[0][i][j] = float32(math.Abs(float64(state[0][i][j])))
				}
			}
			state[1][i] = append([]float32(nil), state[0][i]...)
		}
		for step := range 3 {
			g := make([]float32, n)
			for j := range g {
				g[j] = float32(r.NormFloat64() * float64(step+1))
			}
			for k, asm := range []bool{true, false} {
				useAsm = asm
				s := state[k]
				AdamUpdate32(s[0], g, s[1], s[2], 0.1, 0.001, 0.0007, 1e-7)
			}
			for i, name := range []string{"parameter", "m", "v"} {
				for j := range n {
					if math.Float32bits(state[0][i][j]) != math.Float32bits(state[1][i][j]) {
						t.Fatalf("n=%d step %d: %s %d is %v in assembly, %v in Go", n, step, name, j, state[0][i][j], state[1][i][j])
					}
				}
			}
		}
	}
}

// BenchmarkMLPProducts is the products of a training step of
// 784-512-512-10 at batch 256 (the first layer with 600 of its 784 input
// columns, as MNIST batches leave the others zero): forward, kernel
// gradients and input gradients, in GFLOP/s.
func BenchmarkMLPProducts(b *testing.B) {
	const rows = 256
	type product struct {
		transA, transB bool
		m, n, k        int
	}
	var ps []product
	for _, l := range [][2]int{{600, 512}, {512, 512}, {512, 10}} {
		in, out := l[0], l[1]
		ps = append(ps, product{false, false, rows, out, in}, product{true, false, in, out, rows})
		if in != 600 {
			ps = append(ps, product{false, true, rows, in, out})
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	a, bm, c := random(r, 600*512), random(r, 600*512), make([]float32, 600*512)
	flops := 0.0
	for _, p := range ps {
		flops += 2 * float64(p.m*p.n*p.k)
	}
	cpu := cpuSeconds()
	for range b.N {
		for _, p := range ps {
			lda, ldb := p.k, p.n
			if p.transA {
				lda = p.m
			}
			if p.transB {
				ldb = p.k
			}
			Sgemm(p.transA, p.transB, p.m, p.n, p.k, a, lda, bm, ldb, 0, c, p.n)
		}
	}
	reportFlops(b, flops*float64(b.N), cpu)
}

// reportFlops reports flops as GFLOP/s of wall time and of CPU time since
// cpu (cpuSeconds' reading when the timing began).
func reportFlops(b *testing.B, flops, cpu float64) {
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuSeconds() - cpu; cpu > 0 {
		b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkKernelInL1 runs the micro-kernel alone on one 6×16 tile with
// the inner dimension 256, everything in the L1 cache: the ceiling the
// products approach, close to the core's FMA peak (two 8-wide FMAs a
// cycle).
func BenchmarkKernelInL1(b *testing.B) {
	const k = 256
	r := rand.New(rand.NewPCG(7, 8))
	a, bp, c := random(r, mr*k), random(r, k*nr), make([]float32, mr*nr)
	cpu := cpuSeconds()
	for range b.N {
		kernel(1, k, a, k, 1, bp, c, nr, true)
	}
	reportFlops(b, 2*mr*nr*k*float64(b.N), cpu)
}

// TestAdamUpdate32KeepingKeepsTheOldState: AdamUpdate32Keeping leaves in
// the old slices the state as it was before the update, and updates the
// state bit for bit as AdamUpdate32 does, in assembly and in Go.
func TestAdamUpdate32KeepingKeepsTheOldState(t *testing.T) {
	haveAsm := useAsm
	defer func() { useAsm = haveAsm }()
	r := rand.New(rand.NewPCG(15, 16))
	random := func(n int, nonNegative bool) []float32 {
		s := make([]float32, n)
		for j := range s {
			s[j] = float32(r.NormFloat64())
			if nonNegative {
				s[j] = float32(math.Abs(float64(s[j])))
			}
		}
		return s
	}
	for _, asm := range []bool{true, false} {
		useAsm = asm && haveAsm
		for _, n := range []int{1, 8, 13, 64, 1001} {
			p, g, m, v := random(n, false), random(n, false), random(n, false), random(n, true)
			before := [][]float32{slices.Clone(p), slices.Clone(m), slices.Clone(v)}
			want := [][]float32{slices.Clone(p), slices.Clone(m), slices.Clone(v)}
			AdamUpdate32(want[0], g, want[1], want[2], 0.1, 0.001, 0.0007, 1e-7)
			old := [][]float32{random(n, false), random(n, false), random(n, false)}
			AdamUpdate32Keeping(p, g, m, v, old[0], old[1], old[2], 0.1, 0.001, 0.0007, 1e-7)
			for i, name := range []string{"parameter", "m", "v"} {
				got := [][]float32{p, m, v}[i]
				for j := range n {
					if math.Float32bits(old[i][j]) != math.Float32bits(before[i][j]) {
						t.Fatalf("asm %v n=%d: old %s %d is %v, was %v", useAsm, n, name, j, old[i][j], before[i][j])
					}
					if math.Float32bits(got[j]) != math.Float32bits(want[i][j]) {
						t.Fatalf("asm %v n=%d: %s %d is %v, AdamUpdate32 gives %v", useAsm, n, name, j, got[j], want[i][j])
					}
				}
			}
		}
	}
}

// BenchmarkAdamUpdate32 measures Adam's update of 670,000 float32
// parameters (784-512-512-10's), alone and keeping the old state in three
// other slices as a worker does.
func BenchmarkAdamUpdate32(b *testing.B) {
	const n = 669706
	s := make([][]float32, 7)
	for i := range s {
		s[i] = make([]float32, n)
		for j := range s[i] {
			s[i][j] = float32(j%7) * 0.01
		}
	}
	p, g, m, v := s[0], s[1], s[2], s[3]
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			AdamUpdate32(p, g, m, v, 0.1, 0.001, 1e-3, 1e-7)
		}
	})
	b.Run("keeping", func(b *testing.B) {
		for b.Loop() {
			AdamUpdate32Keeping(p, g, m, v, s[4], s[5], s[6], 0.1, 0.001, 1e-3, 1e-7)
		}
	})
}
