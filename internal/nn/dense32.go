package nn

import "ringtrain/internal/gemm"

// dense32 is a dense layer's float32 working set: the products run through
// package gemm on float32 copies of the input and kernel, with float64
// parameters, gradients and activations around them, as conv2d does.
type dense32 struct {
	x, w, z, dz, dw, dx []float32
	noBias              []float64
}

// forward32 is forward with float32 products: z = x·W in float32, then
// y = act(z + b) in float64, bias and ReLU fused into the widening pass.
func (d *dense) forward32(x []float64, rows int) []float64 {
	f := &d.f32
	f.x = growFloat32(f.x, rows*d.in)
	gemm.FromFloat64(f.x, x[:rows*d.in])
	return d.product32(rows)
}

// product32 finishes forward32 once f.x holds the input.
func (d *dense) product32(rows int) []float64 {
	f := &d.f32
	f.w = growFloat32(f.w, len(d.w))
	gemm.FromFloat64(f.w, d.w)
	f.z = growFloat32(f.z, rows*d.out)
	gemm.Sgemm(false, false, rows, d.out, d.in, f.x, d.in, f.w, d.out, 0, f.z, d.out)
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
	d.act.apply(d.z, d.y, rows, d.out)
	return d.y
}

// bias is the layer's bias, or zeros when it has none.
func (d *dense) bias() []float64 {
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
	db := d.db
	if !d.useBias {
		db = d.bias()
	}
	clear(db)
	switch {
	case d.fusedOutput || d.act == Linear || d.act == ReLU:
		gemm.NarrowGrad(f.dz, db, d.y[:n], dy[:n], !d.fusedOutput && d.act == ReLU)
	default:
		d.dz = grow(d.dz, n)
		d.act.backward(d.y, dy, d.dz, rows, d.out)
		gemm.NarrowGrad(f.dz, db, d.dz, d.dz, false)
	}
	f.dw = growFloat32(f.dw, len(d.dw))
	gemm.Sgemm(true, false, d.in, d.out, rows, f.x, d.in, f.dz, d.out, 0, f.dw, d.out)
	gemm.ToFloat64(d.dw, f.dw)
	if !needDX {
		return nil
	}
	f.dx = growFloat32(f.dx, rows*d.in)
	gemm.Sgemm(false, true, rows, d.in, d.out, f.dz, d.out, f.w, d.out, 0, f.dx, d.in)
	d.dx = grow(d.dx, rows*d.in)
	gemm.ToFloat64(d.dx, f.dx)
	return d.dx
}
