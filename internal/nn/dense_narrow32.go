package nn

import "ringtrain/internal/gemm"

// A float32 model's narrow first dense layer (fewer than narrowUnits
// units) computes on its float32 buffers without package gemm's products:
// for each row it adds the kernel rows of the row's nonzero inputs, scaled,
// in float32 (gemm.SparseAxpy), and its kernel gradient likewise
// (gemm.SparseOuter). Dense rows are first compressed to sparse ones
// (zeros skipped), so that the two agree bit for bit. At that width a
// product's packing costs more than it saves; MNIST's rows are
// four-fifths zeros.

// forwardNarrow32 is forwardSparseNarrow32 for dense input rows.
func (d *dense) forwardNarrow32(x []float64, rows int) []float64 {
	s := &d.f32.sparse
	s.RowEnd = growInts(s.RowEnd, rows)
	s.Col, s.Val = s.Col[:0], s.Val[:0]
	for r := range rows {
		for c, v := range x[r*d.in : (r+1)*d.in] {
			if v != 0 {
				s.Col = append(s.Col, int32(c))
				s.Val = append(s.Val, v)
			}
		}
		s.RowEnd[r] = len(s.Col)
	}
	d.xs = s
	return d.forwardSparseNarrow32(s, rows)
}

// forwardSparseNarrow32 is forward32 for a narrow first layer fed sparse
// input rows.
func (d *dense) forwardSparseNarrow32(x *SparseRows, rows int) []float64 {
	f := &d.f32
	f.z = growFloat32(f.z, rows*d.out)
	for r := range rows {
		zr := f.z[r*d.out : (r+1)*d.out]
		clear(zr)
		cols, vals := x.row(r)
		gemm.SparseAxpy(zr, cols, vals, d.w32)
	}
	return d.finish32(rows)
}

// kernelGradNarrow32 is dW = xᵀ·dz for a narrow first layer, from the
// sparse rows of its last forward pass.
func (d *dense) kernelGradNarrow32(rows int) {
	f := &d.f32
	clear(d.dw32)
	for r := range rows {
		cols, vals := d.xs.row(r)
		gemm.SparseOuter(d.dw32, cols, vals, f.dz[r*d.out:(r+1)*d.out])
	}
}
