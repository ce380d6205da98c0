// Package gemm multiplies float32 matrices fast on one core: C = op(A)·op(B)
// + β·C, the BLAS sgemm, blocked and packed in the manner of BLIS (Goto's
// algorithm) around a 6×32 register-blocked micro-kernel written in
// AVX-512 on amd64 cores that have it (twice the arithmetic per cycle
// where the FMA units are 512 bits wide), two 6×16 AVX2 and FMA halves on
// the others, and a portable Go kernel elsewhere.
//
// Unlike BLIS, A is not packed: the micro-kernel reads its six rows (or,
// transposed, six adjacent columns) in place with any strides, which for
// the tall, narrow products of convolutions saves a pass over the largest
// matrix.
//
// It exists for package nn's dense, convolution and recurrent layers, whose
// products dominate a training step and run several times faster here
// than in gonum's float64 Gemm.
//
// A product large enough to pay for it is split across GOMAXPROCS cores by
// rows of C (see parallel.go); each element of C is computed by the same
// operations in the same order whatever the split, so the result is
// bit-identical to the one-core product's.
package gemm

import "fmt"

// Blocking: KC values of the inner dimension at a time; B's packed panels
// of NR columns span up to NC columns (a block of at most 4 MiB, for the
// narrow B matrices of convolutions a few dozen KiB that stay in L1 or
// L2); A is read in place MC rows at a time (at most 144 KiB, in L2).
const (
	mr = 6  // rows of the micro-kernel's tile
	nr = 32 // columns of the micro-kernel's tile
	kc = 256
	mc = 24 * mr
	nc = 4096
)

// Sgemm sets C = op(A)·op(B) + beta·C, where op(X) is X or its transpose
// Xᵀ as transA and transB say. op(A) is m×k, op(B) k×n and C m×n; the
// matrices are row-major with row strides lda, ldb and ldc. It panics if a
// slice is too short for its matrix.
func Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative size %d×%d×%d", m, n, k))
	}
	check := func(name string, s []float32, rows, cols, ld int) {
		if rows > 0 && cols > 0 && (ld < cols || len(s) < (rows-1)*ld+cols) {
			panic(fmt.Sprintf("gemm: %s of %d values, stride %d, for a %d×%d matrix", name, len(s), ld, rows, cols))
		}
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	check("A", a, ar, ac, lda)
	check("B", b, br, bc, ldb)
	check("C", c, m, n, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || (beta != 0 && beta != 1) {
		scale(c, m, n, ldc, beta)
		if k == 0 {
			return
		}
		beta = 1
	}
	if parts := split(m, n, k); parts > 1 {
		parallel(parts, transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
		return
	}
	serial(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// serial is Sgemm on the calling goroutine, for beta 0 or 1 and sizes
// that are not zero.
func serial(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	w := getWork()
	defer putWork(w)
	// A is read in place, whole panels of mr rows at a time; only the last,
	// partial, panel is packed (zero-padded).
	rs, cs := lda, 1
	if transA {
		rs, cs = 1, lda
	}
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		// An inner dimension a little over KC is done in one block rather
		// than two, sparing a pass over C.
		kcb := kc
		if k <= kc+kc/2 {
			kcb = k
		}
		for pc := 0; pc < k; pc += kcb {
			kb := min(kcb, k-pc)
			packed := w.b
			if !transB && ldb == nr && n == nr {
				// B is one panel already in the packed layout (a
				// convolution of 32 filters' output gradient): read it
				// in place rather than copy it.
				packed = b[pc*nr : (pc+kb)*nr]
			} else {
				w.b = packB(w.b, transB, b, ldb, pc, kb, jc, nb)
				packed = w.b
			}
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				// The partial panel of the block's last rows is packed
				// once, not once per panel of B.
				if edge := mb % mr; edge > 0 {
					w.a = packEdge(w.a, a, rs, cs, ic+mb-edge, edge, pc, kb)
				}
				for jr := 0; jr < nb; jr += nr {
					bp := packed[jr*kb:]
					cols := min(nr, nb-jr)
					// The first block of the inner dimension overwrites C
					// when beta is 0; the others add to it.
					add := beta == 1 || pc > 0
					full := mb / mr // whole tiles, done in one call when whole columns too
					ir := 0
					if cols == nr && full > 0 {
						kernel(full, kb, a[ic*rs+pc*cs:], rs, cs, bp, c[ic*ldc+jc+jr:], ldc, add)
						ir = full * mr
					}
					for ; ir < mb; ir += mr {
						rows := min(mr, mb-ir)
						ap, ars, acs := a[(ic+ir)*rs+pc*cs:], rs, cs
						if rows < mr {
							ap, ars, acs = w.a, 1, mr
						}
						ct := c[(ic+ir)*ldc+jc+jr:]
						kernel(1, kb, ap, ars, acs, bp, w.tile[:], nr, false)
						for i := range rows {
							dst := ct[i*ldc:][:cols]
							if !add {
								copy(dst, w.tile[i*nr:])
								continue
							}
							for j := range dst {
								dst[j] += w.tile[i*nr+j]
							}
						}
					}
				}
			}
		}
	}
}

// scale sets C = beta·C.
func scale(c []float32, m, n, ldc int, beta float32) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// packEdge copies rows i0 to i0+rows (fewer than mr) and columns pc to
// pc+kb of op(A), whose value (i, p) is a[i·rs + p·cs], into a panel stored
// column by column, mr values per column, zero-padded.
func packEdge(dst, a []float32, rs, cs, i0, rows, pc, kb int) []float32 {
	dst = growTo(dst, mr*kb)
	clear(dst)
	for i := range rows {
		for p := range kb {
			dst[p*mr+i] = a[(i0+i)*rs+(pc+p)*cs]
		}
	}
	return dst
}

// packB copies rows pc to pc+kb and columns jc to jc+nb of op(B) into
// panels of nr columns, each stored row by row (nr values per row),
// zero-padding the last panel.
func packB(dst []float32, trans bool, b []float32, ldb, pc, kb, jc, nb int) []float32 {
	panels := (nb + nr - 1) / nr
	dst = growTo(dst, panels*nr*kb)
	for p := range panels {
		out := dst[p*nr*kb : (p+1)*nr*kb]
		j0 := jc + p*nr
		cols := min(nr, jc+nb-j0)
		if !trans {
			if cols == nr {
				for k := range kb {
					// A fixed-size copy: vector moves rather than a call.
					*(*[nr]float32)(out[k*nr:]) = *(*[nr]float32)(b[(pc+k)*ldb+j0:])
				}
				continue
			}
			for k := range kb {
				o := out[k*nr : k*nr+nr]
				copy(o, b[(pc+k)*ldb+j0:][:cols])
				clear(o[cols:])
			}
			continue
		}
		// op(B)[k][j] = B[j][k].
		if cols < nr {
			for k := range kb {
				clear(out[k*nr+cols : (k+1)*nr])
			}
		}
		for j := range cols {
			src := b[(j0+j)*ldb+pc:][:kb]
			for k, v := range src {
				out[k*nr+j] = v
			}
		}
	}
	return dst
}

func growTo(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
