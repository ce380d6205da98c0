package nn

import "ringtrain/internal/gemm"

// recurrent32 is a recurrent layer's float32 working set: float32 copies
// of the input and the products' operands, with float64 states and gates
// around them. In a float32 model the products read the kernels from the
// model's float32 buffer and write their gradients there (the views wv,
// uv, bv and their gradients dwv, duv, dbv: native); a float32 layer of a
// float64 model multiplies float32 copies of its float64 kernels instead.
type recurrent32 struct {
	wv, uv, bv, dwv, duv, dbv []float32
	// b64 is a native layer's bias widened, db64 its gradient before
	// it is narrowed.
	b64, db64 []float64
	// x is the input (after dropout), time-major steps × rows × in; w
	// and u the kernels; xw the input projections, time-major; hd every
	// step's h_t after recurrent dropout, time-major steps × rows × units,
	// the left operand of the step's product and of the recurrent
	// kernel's gradient; z a step's product.
	x, w, u, xw, hd, z []float32
	// dz the gates' gradients, time-major; dh a step's hidden gradient;
	// dw, du, dx the products' results (dx time-major).
	dz, dh, dw, du, dx []float32
	// uT is the recurrent kernel transposed, for the steps' dL/dh.
	uT     []float32
	noBias []float64
}

// projectInputs32 is projectInputs with a float32 product, time-major:
// the input's rows are reordered step by step as they are narrowed, so
// that each step's projections, and later each step's gradients, lie in
// one block.
func (l *recurrent) projectInputs32(rows int) {
	f := &l.f32
	T, F, U, G := l.steps, l.in, l.units, l.width()
	f.x = growFloat32(f.x, rows*T*F)
	for t := range T {
		for r := range rows {
			gemm.FromFloat64(f.x[(t*rows+r)*F:(t*rows+r+1)*F], l.x[(r*T+t)*F:(r*T+t+1)*F])
		}
	}
	if f.wv != nil {
		f.w, f.u = f.wv, f.uv
	} else {
		f.w = growFloat32(f.w, len(l.w))
		gemm.FromFloat64(f.w, l.w)
		f.u = growFloat32(f.u, len(l.u))
		gemm.FromFloat64(f.u, l.u)
	}
	f.xw = growFloat32(f.xw, rows*T*G)
	gemm.Sgemm(false, false, rows*T, G, F, f.x, F, f.w, G, 0, f.xw, G)
	f.hd = growFloat32(f.hd, T*rows*U)
	f.z = growFloat32(f.z, rows*G)
}

// bias is the layer's bias, widened from a native layer's float32, or
// zeros when it has none.
func (l *recurrent) bias() []float64 {
	if l.useBias && l.f32.bv != nil {
		l.f32.b64 = grow(l.f32.b64, l.width())
		widen(l.f32.b64, l.f32.bv)
		return l.f32.b64
	}
	if l.useBias {
		return l.b
	}
	if len(l.f32.noBias) != l.width() {
		l.f32.noBias = make([]float64, l.width())
	}
	return l.f32.noBias
}

// stepProduct32 sets z to step t's input projection plus h_t (after
// recurrent dropout)·U plus the bias: the product adds into the
// projection in float32, and the bias comes in as it widens. The float32
// h_t is kept for the backward pass.
func (l *recurrent) stepProduct32(t, rows int) {
	f := &l.f32
	U, G := l.units, l.width()
	hd := f.hd[t*rows*U : (t+1)*rows*U]
	gemm.FromFloat64(hd, l.dropped(l.h[t*rows*U:(t+1)*rows*U]))
	copy(f.z, f.xw[t*rows*G:(t+1)*rows*G])
	gemm.Sgemm(false, false, rows, G, U, hd, U, f.u, G, 1, f.z, G)
	gemm.WidenBias(l.z, f.z, l.bias(), false)
}

// backward32 is backward with float32 products: a product per step for
// dL/dh, then the recurrent kernel's gradient over all steps at once.
func (l *recurrent) backward32(dy []float64, rows int, needDX bool) []float64 {
	f := &l.f32
	T, F, U, G := l.steps, l.in, l.units, l.width()
	l.backwardStart(rows)
	f.dz = growFloat32(f.dz, T*rows*G)
	f.dh = growFloat32(f.dh, rows*U)
	// Uᵀ once, so that every step's product reads it row by row rather
	// than packing the transpose afresh.
	f.uT = growFloat32(f.uT, len(f.u))
	for i := range U {
		for j, v := range f.u[i*G : (i+1)*G] {
			f.uT[j*U+i] = v
		}
	}
	for t := T - 1; t >= 0; t-- {
		dz := l.stepGradient(t, rows, dy)
		dz32 := f.dz[t*rows*G : (t+1)*rows*G]
		gemm.FromFloat64(dz32, dz)
		if t == 0 {
			break // h_0 is zero: nothing earlier
		}
		gemm.Sgemm(false, false, rows, U, G, dz32, G, f.uT, U, 0, f.dh, U)
		gemm.ToFloat64(l.dh, f.dh)
		l.maskHidden()
	}
	native := f.wv != nil
	// dU = Σ_{t≥1} hd_tᵀ·dz_t: steps 1 to T−1 are contiguous time-major.
	f.du = growFloat32(f.du, U*G)
	du := f.du
	if native {
		du = f.duv
	}
	if T > 1 {
		gemm.Sgemm(true, false, U, G, (T-1)*rows, f.hd[rows*U:], U, f.dz[rows*G:], G, 0, du, G)
	} else {
		clear(du)
	}
	if !native {
		gemm.ToFloat64(l.du, du)
	}
	// The input kernel's gradient over all steps at once: the input and
	// the gates' gradients are both time-major.
	f.dw = growFloat32(f.dw, F*G)
	dw := f.dw
	if native {
		dw = f.dwv
	}
	gemm.Sgemm(true, false, F, G, T*rows, f.x, F, f.dz, G, 0, dw, G)
	if !native {
		gemm.ToFloat64(l.dw, dw)
	}
	if native && l.useBias {
		f.db64 = grow(f.db64, G)
		l.biasGradient(f.db64, l.dz, rows)
		narrow(f.dbv, f.db64)
	} else {
		l.biasGradient(l.db, l.dz, rows)
	}
	if !needDX {
		return nil
	}
	f.dx = growFloat32(f.dx, rows*T*F)
	gemm.Sgemm(false, true, T*rows, F, G, f.dz, G, f.w, G, 0, f.dx, F)
	l.dx = grow(l.dx, rows*T*F)
	for t := range T {
		for r := range rows {
			gemm.ToFloat64(l.dx[(r*T+t)*F:(r*T+t+1)*F], f.dx[(t*rows+r)*F:(t*rows+r+1)*F])
		}
	}
	l.maskInput(rows)
	return l.dx
}
