package nn

// A float32 model's narrow first dense layer (fewer than narrowUnits
// units) computes on its float32 buffers without package gemm: for each
// row it adds the kernel rows of the row's nonzero inputs, scaled, in
// float32, and its kernel gradient likewise, the same for sparse and dense
// rows (zeros skipped in both), so that the two agree bit for bit. At that
// width a product's packing costs more than it saves; MNIST's rows are
// four-fifths zeros.

// forwardNarrow32 is forward32 for a narrow first layer.
func (d *dense) forwardNarrow32(x []float64, rows int) []float64 {
	f := &d.f32
	f.z = growFloat32(f.z, rows*d.out)
	for r := range rows {
		zr := f.z[r*d.out : (r+1)*d.out]
		clear(zr)
		for c, v := range x[r*d.in : (r+1)*d.in] {
			if v != 0 {
				axpy32(zr, float32(v), d.w32[c*d.out:(c+1)*d.out])
			}
		}
	}
	return d.finish32(rows)
}

// forwardSparseNarrow32 is forwardNarrow32 for sparse input rows.
func (d *dense) forwardSparseNarrow32(x *SparseRows, rows int) []float64 {
	f := &d.f32
	f.z = growFloat32(f.z, rows*d.out)
	for r := range rows {
		zr := f.z[r*d.out : (r+1)*d.out]
		clear(zr)
		cols, vals := x.row(r)
		for i, c := range cols {
			axpy32(zr, float32(vals[i]), d.w32[int(c)*d.out:(int(c)+1)*d.out])
		}
	}
	return d.finish32(rows)
}

// kernelGradNarrow32 is dW = xᵀ·dz for a narrow first layer, from the
// input of its last forward pass, sparse or dense.
func (d *dense) kernelGradNarrow32(rows int) {
	f := &d.f32
	clear(d.dw32)
	for r := range rows {
		dzr := f.dz[r*d.out : (r+1)*d.out]
		if d.xs != nil {
			cols, vals := d.xs.row(r)
			for i, c := range cols {
				axpy32(d.dw32[int(c)*d.out:(int(c)+1)*d.out], float32(vals[i]), dzr)
			}
			continue
		}
		for c, v := range d.x[r*d.in : (r+1)*d.in] {
			if v != 0 {
				axpy32(d.dw32[c*d.out:(c+1)*d.out], float32(v), dzr)
			}
		}
	}
}

// axpy32 sets dst[j] += a·src[j] for every j < len(dst).
func axpy32(dst []float32, a float32, src []float32) {
	src = src[:len(dst)]
	for j, v := range src {
		dst[j] += a * v
	}
}
