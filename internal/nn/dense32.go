package nn

import "ringtrain/internal/gemm"

// dense32 is a dense layer's float32 working set: the products run through
// package gemm on a float32 copy of the input, with float64 activations
// around them. In a float32 model they read the kernel from the model's
// float32 buffer and write its gradient there (dense.w32, dense.dw32); a
// float32 layer of a float64 model multiplies a float32 copy of its
// float64 kernel instead, and widens the gradient back.
//
// A model's first layer multiplies only the input columns that are nonzero
// in some row of the batch (cols): MNIST's border pixels are zero in every
// image, and in a batch of 256 about a quarter of the 784 columns are, which
// spares that share of the first layer's products. The kernel's rows are
// gathered to match, and its gradient is zero in the rows left out.
type dense32 struct {
	x, w, z, dz, dw, dx []float32
	// y is the output a chained layer hands the next float32 layer (z
	// itself after a fused bias and ReLU); noBias a layer without bias's
	// float32 zeros.
	y, noBias32 []float32
	// noBias is a layer without bias's zeros; b64 and db64 the float64
	// bias and bias gradient of a native layer.
	noBias, b64, db64 []float64
	// cols lists the input columns in the product, in order, when it
	// leaves some out; index maps a column to its place in cols; used
	// marks the columns seen nonzero.
	cols  []int32
	index []int32
	used  []bool
	// sparse is a narrow first layer's dense input rows, compressed.
	sparse SparseRows
}

// minSkipped is the share (1/minSkipped) of a first layer's input columns
// that must be zero throughout a batch for the product to leave them out.
const minSkipped = 8

// forward32 is forward with float32 products: z = x·W in float32, then
// y = act(z + b) in float64, bias and ReLU fused into the widening pass;
// between chained layers the input comes as the previous layer's float32
// output, and the output stays in float32 for the next (finish32).
func (d *dense) forward32(x []float64, rows int) []float64 {
	f := &d.f32
	if d.prev != nil {
		f.x = d.prev.output32()[:rows*d.in]
		return d.product32(rows)
	}
	x = x[:rows*d.in]
	if d.first {
		f.resetColumns(d.in)
		for r := range rows {
			for j, v := range x[r*d.in : (r+1)*d.in] {
				if v != 0 {
					f.used[j] = true
				}
			}
		}
		f.chooseColumns()
	}
	k := d.inner()
	f.x = growFloat32(f.x, rows*k)
	if len(f.cols) == 0 {
		gemm.FromFloat64(f.x, x)
		return d.product32(rows)
	}
	for r := range rows {
		xr, dst := x[r*d.in:(r+1)*d.in], f.x[r*k:(r+1)*k]
		for i, c := range f.cols {
			dst[i] = float32(xr[c])
		}
	}
	return d.product32(rows)
}

// forwardSparse32 is forward32 for sparse input rows.
func (d *dense) forwardSparse32(x *SparseRows, rows int) []float64 {
	f := &d.f32
	f.resetColumns(d.in)
	if rows > 0 {
		for _, c := range x.Col[:x.RowEnd[rows-1]] {
			f.used[c] = true
		}
	}
	f.chooseColumns()
	k := d.inner()
	f.x = growFloat32(f.x, rows*k)
	clear(f.x)
	for r := range rows {
		cols, vals := x.row(r)
		dst := f.x[r*k : (r+1)*k]
		for i, c := range cols {
			if len(f.cols) > 0 {
				c = f.index[c]
			}
			dst[c] = float32(vals[i])
		}
	}
	return d.product32(rows)
}

// resetColumns clears the marks of n columns.
func (f *dense32) resetColumns(n int) {
	if len(f.used) != n {
		f.used = make([]bool, n)
		f.index = make([]int32, n)
	}
	clear(f.used)
	f.cols = f.cols[:0]
}

// chooseColumns lists the marked columns in cols when enough are left
// out, and leaves cols empty (every column) otherwise.
func (f *dense32) chooseColumns() {
	n := 0
	for _, u := range f.used {
		if u {
			n++
		}
	}
	if len(f.used)-n < len(f.used)/minSkipped {
		return
	}
	for j, u := range f.used {
		if u {
			f.index[j] = int32(len(f.cols))
			f.cols = append(f.cols, int32(j))
		}
	}
}

// inner is the inner dimension of the forward product: the columns kept.
func (d *dense) inner() int {
	if n := len(d.f32.cols); n > 0 {
		return n
	}
	return d.in
}

// product32 finishes forward32 once f.x holds the input.
func (d *dense) product32(rows int) []float64 {
	f := &d.f32
	k := d.inner()
	w := d.w32
	switch {
	case d.w32 == nil: // a float32 layer of a float64 model
		f.w = growFloat32(f.w, k*d.out)
		if len(f.cols) == 0 {
			gemm.FromFloat64(f.w, d.w)
		} else {
			for i, c := range f.cols {
				gemm.FromFloat64(f.w[i*d.out:(i+1)*d.out], d.w[int(c)*d.out:(int(c)+1)*d.out])
			}
		}
		w = f.w
	case len(f.cols) > 0:
		f.w = growFloat32(f.w, k*d.out)
		for i, c := range f.cols {
			copy(f.w[i*d.out:(i+1)*d.out], d.w32[int(c)*d.out:(int(c)+1)*d.out])
		}
		w = f.w
	}
	f.z = growFloat32(f.z, rows*d.out)
	gemm.Sgemm(false, false, rows, d.out, k, f.x, k, w, d.out, 0, f.z, d.out)
	return d.finish32(rows)
}

// finish32 finishes a float32 forward pass once f.z holds x·W: bias and
// activation, in float64, or for a layer whose next layer takes float32
// (chained) in float32 where the activation allows (ReLU and linear, in
// place in f.z) and narrowed from float64 otherwise; it then returns nil,
// the output in output32.
func (d *dense) finish32(rows int) []float64 {
	f := &d.f32
	if d.next != nil && (d.act == ReLU || d.act == Linear) {
		f.y = f.z[:rows*d.out]
		gemm.BiasReLU(f.y, d.bias32(), d.act == ReLU)
		return nil
	}
	d.z = grow(d.z, rows*d.out)
	// The softmax output layer keeps its logits in z for the loss; ReLU
	// and linear layers produce their outputs in the same pass.
	fuse := d.act == ReLU || d.act == Linear
	gemm.WidenBias(d.z, f.z, d.bias(), d.act == ReLU)
	if fuse {
		d.y = d.z
		return d.y
	}
	d.y = grow(d.y, rows*d.out)
	d.applyAct(rows, d.act.applyFast)
	if d.next != nil {
		f.y = growFloat32(f.y, rows*d.out)
		gemm.FromFloat64(f.y, d.y[:rows*d.out])
		return nil
	}
	return d.y
}

// bias32 is a chained layer's float32 bias, or zeros when it has none.
func (d *dense) bias32() []float32 {
	if d.useBias {
		return d.b32
	}
	if len(d.f32.noBias32) != d.out {
		d.f32.noBias32 = make([]float32, d.out)
	}
	return d.f32.noBias32
}

func (d *dense) produces32(bool) bool   { return d.chained }
func (d *dense) output32() []float32    { return d.f32.y }
func (d *dense) inputGrad32() []float32 { return d.f32.dx }

// bias is the layer's bias, widened from a native layer's float32, or
// zeros when it has none.
func (d *dense) bias() []float64 {
	if d.useBias && d.b32 != nil {
		d.f32.b64 = grow(d.f32.b64, d.out)
		widen(d.f32.b64, d.b32)
		return d.f32.b64
	}
	if d.useBias {
		return d.b
	}
	if len(d.f32.noBias) != d.out {
		d.f32.noBias = make([]float64, d.out)
	}
	return d.f32.noBias
}

// backward32 is backward with float32 products.
func (d *dense) backward32(dy []float64, rows int, needDX bool) []float64 {
	f := &d.f32
	n := rows * d.out
	f.dz = growFloat32(f.dz, n)
	native := d.w32 != nil
	db := d.db
	if !d.useBias || native {
		// Scratch: a layer without bias discards the sums (they must not
		// go to bias()'s zeros, which the forward pass adds).
		f.db64 = grow(f.db64, d.out)
		db = f.db64
	}
	clear(db)
	switch {
	case d.next != nil && (d.act == Linear || d.act == ReLU):
		gemm.ReLUGrad(f.dz, f.y[:n], d.next.inputGrad32()[:n], db, d.act == ReLU)
	case d.next != nil:
		d.dz = grow(d.dz, n)
		gemm.ToFloat64(d.dz, d.next.inputGrad32()[:n])
		d.act.backward(d.y, d.dz, d.dz, rows, d.out)
		gemm.NarrowGrad(f.dz, db, d.dz, d.dz, false)
	case d.fusedOutput || d.act == Linear || d.act == ReLU:
		gemm.NarrowGrad(f.dz, db, d.y[:n], dy[:n], !d.fusedOutput && d.act == ReLU)
	default:
		d.dz = grow(d.dz, n)
		d.act.backward(d.y, dy, d.dz, rows, d.out)
		gemm.NarrowGrad(f.dz, db, d.dz, d.dz, false)
	}
	if native && d.useBias {
		narrow(d.db32, db)
	}
	k := d.inner()
	switch {
	case d.narrow:
		d.kernelGradNarrow32(rows)
	case native && len(f.cols) == 0:
		gemm.Sgemm(true, false, k, d.out, rows, f.x, k, f.dz, d.out, 0, d.dw32, d.out)
	default:
		f.dw = growFloat32(f.dw, k*d.out)
		gemm.Sgemm(true, false, k, d.out, rows, f.x, k, f.dz, d.out, 0, f.dw, d.out)
		d.scatterKernelGrad()
	}
	if !needDX {
		return nil
	}
	w := d.w32
	if !native {
		if len(f.cols) > 0 {
			// The input gradient needs every row of the kernel.
			f.w = growFloat32(f.w, len(d.w))
			gemm.FromFloat64(f.w, d.w)
		}
		w = f.w
	}
	f.dx = growFloat32(f.dx, rows*d.in)
	gemm.Sgemm(false, true, rows, d.in, d.out, f.dz, d.out, w, d.out, 0, f.dx, d.in)
	if d.prev != nil {
		return nil // the previous layer reads f.dx (inputGrad32)
	}
	d.dx = grow(d.dx, rows*d.in)
	gemm.ToFloat64(d.dx, f.dx)
	return d.dx
}

// scatterKernelGrad writes the kernel gradient f.dw, whose rows are the
// product's input columns, to the layer's gradient: dw32 for a native
// layer, widened to dw otherwise; rows left out of the product get zero.
func (d *dense) scatterKernelGrad() {
	f := &d.f32
	if d.dw32 != nil {
		if len(f.cols) == 0 {
			copy(d.dw32, f.dw)
			return
		}
		clear(d.dw32)
		for i, c := range f.cols {
			copy(d.dw32[int(c)*d.out:(int(c)+1)*d.out], f.dw[i*d.out:(i+1)*d.out])
		}
		return
	}
	if len(f.cols) == 0 {
		gemm.ToFloat64(d.dw, f.dw)
		return
	}
	clear(d.dw)
	for i, c := range f.cols {
		gemm.ToFloat64(d.dw[int(c)*d.out:(int(c)+1)*d.out], f.dw[i*d.out:(i+1)*d.out])
	}
}
