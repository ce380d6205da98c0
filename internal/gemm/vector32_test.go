package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bothPaths runs f with the assembly (where there is some) and with Go.
func bothPaths(t *testing.T, f func(t *testing.T)) {
	saved := useAsm
	defer func() { useAsm = saved }()
	for _, asm := range []bool{false, true} {
		if asm && !saved {
			continue
		}
		useAsm = asm
		name := "go"
		if asm {
			name = "asm"
		}
		t.Run(name, f)
	}
}

// specials returns n random values with zeros of both signs, NaN and
// ties sprinkled in.
func specials(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		switch r.IntN(8) {
		case 0:
			v[i] = 0
		case 1:
			v[i] = float32(math.Copysign(0, -1))
		case 2:
			v[i] = 0.5 // ties
		case 3:
			if r.IntN(4) == 0 {
				v[i] = float32(math.NaN())
				continue
			}
			fallthrough
		default:
			v[i] = float32(r.NormFloat64())
		}
	}
	return v
}

func same(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

func TestBiasReLU(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, n := range []int{1, 7, 8, 24, 32} {
			for _, relu := range []bool{false, true} {
				rows := 5
				y, bias := specials(r, rows*n), random(r, n)
				want := make([]float32, len(y))
				for i, v := range y {
					x := v + bias[i%n]
					if relu && x < 0 {
						x = 0
					}
					want[i] = x
				}
				BiasReLU(y, bias, relu)
				for i := range y {
					if !same(y[i], want[i]) {
						t.Fatalf("n=%d relu=%v: [%d] = %v, want %v", n, relu, i, y[i], want[i])
					}
				}
			}
		}
	})
}

func TestReLUGrad(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range []int{3, 8, 16, 40} {
			for _, relu := range []bool{false, true} {
				rows := 6
				y, dy := specials(r, rows*n), random(r, rows*n)
				db := make([]float64, n)
				wantDB := make([]float64, n)
				for j := range db {
					db[j] = float64(j)
					wantDB[j] = float64(j)
				}
				want := make([]float32, len(dy))
				for i, g := range dy {
					if relu && !(y[i] > 0) {
						g = 0
					}
					want[i] = g
					wantDB[i%n] += float64(g)
				}
				dz := make([]float32, len(dy))
				ReLUGrad(dz, y, dy, db, relu)
				for i := range dz {
					if !same(dz[i], want[i]) {
						t.Fatalf("n=%d relu=%v: dz[%d] = %v, want %v", n, relu, i, dz[i], want[i])
					}
				}
				for j := range db {
					if db[j] != wantDB[j] {
						t.Fatalf("n=%d relu=%v: db[%d] = %v, want %v", n, relu, j, db[j], wantDB[j])
					}
				}
				// In place, dz = dy.
				ReLUGrad(dy, y, dy, db, relu)
				for i := range dy {
					if !same(dy[i], want[i]) {
						t.Fatalf("in place, n=%d relu=%v: dz[%d] = %v, want %v", n, relu, i, dy[i], want[i])
					}
				}
			}
		}
	})
}

// TestMaxPool2x2 checks a row of 2×2 pooling and its gradient against a
// direct reading of their definitions, on values with ties, zeros of both
// signs and NaNs, channel counts with and without a vector tail.
func TestMaxPool2x2(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, c := range []int{1, 5, 8, 16, 32} {
			const ow = 4
			top, bottom := specials(r, 2*ow*c), specials(r, 2*ow*c)
			y := make([]float32, ow*c)
			MaxPool2x2(y, top, bottom, ow, c)
			dy := random(r, ow*c)
			dxTop, dxBottom := specials(r, 2*ow*c), specials(r, 2*ow*c) // overwritten
			MaxPool2x2Grad(dxTop, dxBottom, top, bottom, y, dy, ow, c)
			for ox := range ow {
				for ch := range c {
					at := [4]int{2*ox*c + ch, (2*ox+1)*c + ch, 2*ox*c + ch, (2*ox+1)*c + ch}
					vals := [4]float32{top[at[0]], top[at[1]], bottom[at[2]], bottom[at[3]]}
					m, arg := vals[0], 0
					for i := 1; i < 4; i++ {
						if vals[i] > m {
							m, arg = vals[i], i
						}
					}
					if got := y[ox*c+ch]; !same(got, m) {
						t.Fatalf("c=%d: y[%d][%d] = %v, want %v of %v", c, ox, ch, got, m, vals)
					}
					for i := range 4 {
						dx := dxTop
						if i >= 2 {
							dx = dxBottom
						}
						want := float32(0)
						if i == arg {
							want = dy[ox*c+ch]
						}
						if got := dx[at[i]]; !same(got, want) {
							t.Fatalf("c=%d: gradient at window value %d of %v (max %v) = %v, want %v", c, i, vals, m, got, want)
						}
					}
				}
			}
		}
	})
}

// TestSparseAxpyAndOuter checks both sparse row kernels bit for bit
// against the plain loop, at widths around the assembly's eight lanes,
// and 16 (the widest row kept in registers), and that a column past the
// matrix panics.
func TestSparseAxpyAndOuter(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		const rows = 20
		for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 24} {
			col := []int32{0, 3, 3, 7, 19, 12}
			val := make([]float64, len(col))
			for i := range val {
				val[i] = r.NormFloat64()
			}
			val[1] = 1e-300 // rounds to a float32 zero
			w := specials(r, rows*n)
			dst, want := specials(r, n), make([]float32, n)
			copy(want, dst)
			for i, c := range col {
				for j := range n {
					want[j] += float32(float32(val[i]) * w[int(c)*n+j])
				}
			}
			SparseAxpy(dst, col, val, w)
			for j := range n {
				if !same(dst[j], want[j]) {
					t.Fatalf("SparseAxpy n=%d: dst[%d] = %v, want %v", n, j, dst[j], want[j])
				}
			}
			src := specials(r, n)
			wantW := make([]float32, len(w))
			copy(wantW, w)
			for i, c := range col {
				for j := range n {
					wantW[int(c)*n+j] += float32(float32(val[i]) * src[j])
				}
			}
			SparseOuter(w, col, val, src)
			for k := range w {
				if !same(w[k], wantW[k]) {
					t.Fatalf("SparseOuter n=%d: dst[%d] = %v, want %v", n, k, w[k], wantW[k])
				}
			}
		}
		for name, f := range map[string]func(){
			"SparseAxpy":  func() { SparseAxpy(make([]float32, 4), []int32{2}, []float64{1}, make([]float32, 8)) },
			"SparseOuter": func() { SparseOuter(make([]float32, 8), []int32{-1}, []float64{1}, make([]float32, 4)) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s accepted a column outside the matrix", name)
					}
				}()
				f()
			}()
		}
	})
}

// TestFinite32 puts NaN, ±Inf and the NaN with every mantissa bit set at
// every position of vectors of lengths around the assembly's 32-value
// stride, beside the largest, smallest and subnormal floats, which must
// pass, on both paths.
func TestFinite32(t *testing.T) {
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0xffffffff)}
	ok := []float32{math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0, float32(math.Copysign(0, -1)), -1.5, math.Float32frombits(0x7f7fffff)}
	bothPaths(t, func(t *testing.T) {
		for _, n := range []int{0, 1, 3, 31, 32, 33, 63, 64, 65, 100, 129} {
			v := make([]float32, n)
			for i := range v {
				v[i] = ok[i%len(ok)]
			}
			if !Finite32(v) {
				t.Fatalf("length %d: finite values reported not finite", n)
			}
			for i := range v {
				for _, x := range bad {
					keep := v[i]
					v[i] = x
					if Finite32(v) {
						t.Errorf("length %d: %v (%#x) at %d not noticed", n, x, math.Float32bits(x), i)
					}
					v[i] = keep
				}
			}
		}
	})
}

func BenchmarkFinite32(b *testing.B) {
	v := make([]float32, 669706) // 784-512-512-10's gradient
	for i := range v {
		v[i] = float32(i) * 1e-3
	}
	for _, asm := range []bool{false, true} {
		if asm && !useAsm {
			continue
		}
		b.Run(map[bool]string{false: "go", true: "asm"}[asm], func(b *testing.B) {
			saved := useAsm
			defer func() { useAsm = saved }()
			useAsm = asm
			b.SetBytes(4 * int64(len(v)))
			for b.Loop() {
				if !Finite32(v) {
					b.Fatal("finite values reported not finite")
				}
			}
		})
	}
}

// BenchmarkSparseAxpy measures the Keras example's first layer forward
// (rows of 10 values) and kernel gradient over one sparse row of 150
// pixels, a typical MNIST image's count, in runs of neighbouring pixels.
func BenchmarkSparseAxpy(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, n, nnz = 784, 10, 150
	w := make([]float32, rows*n)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	col := make([]int32, nnz)
	val := make([]float64, nnz)
	for i := range col {
		col[i] = int32(100 + i + i/6*22) // runs of 6 neighbours, as strokes give
		val[i] = r.Float64()
	}
	dst := make([]float32, n)
	b.Run("forward", func(b *testing.B) {
		for b.Loop() {
			SparseAxpy(dst, col, val, w)
		}
	})
	b.Run("outer", func(b *testing.B) {
		for b.Loop() {
			SparseOuter(w, col, val, dst)
		}
	})
}
