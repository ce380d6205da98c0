package nn

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// recurrent is a simple_rnn or lstm layer over inputs of steps × in values
// (an image read row by row: 28 steps of 28 pixels), with Keras's
// semantics and parameter layout: a kernel of in × gates·units, a recurrent
// kernel of units × gates·units and a bias of gates·units, the lstm's gates
// in the order input, forget, cell, output.
//
//	simple_rnn: h_t = a(x_t·W + h_{t−1}·U + b)
//	lstm:       [i f g o] = [σ σ a σ](x_t·W + h_{t−1}·U + b)
//	            c_t = f⊙c_{t−1} + i⊙g,  h_t = o⊙a(c_t)
//
// with a the activation (tanh) and σ the recurrent activation (sigmoid).
// Dropout multiplies x_t, and recurrent dropout h_{t−1}, by masks drawn
// once per sample for all steps (Keras's implementation 2: one mask for
// all gates), keyed like dropout layers' masks by the sample's identity.
type recurrent struct {
	index               uint64 // the layer's position, which keys its masks
	steps, in, units    int
	gates               int // 1 for simple_rnn, 4 for lstm
	act, recAct         Activation
	useBias, returnSeq  bool
	unitForgetBias      bool
	dropout, recDropout float64
	kInit, rInit, bInit Initializer
	kReg, rReg, bReg    *Regularizer

	w, u, b, dw, du, db []float64

	// single computes the products in float32 (the default), in f32.
	single bool
	f32    recurrent32

	// The last forward pass, time-major where noted: h holds h_0 (zeros)
	// to h_steps, c likewise for the lstm, gate the activated gates and
	// ac a(c_t) of every step.
	rows         int
	x, xd        []float64 // the input (after dropout, in xd), rows·steps × in
	xmask, hmask []float64 // rows × in and rows × units, nil without dropout
	xw, z        []float64
	h, c         []float64 // time-major (steps+1) × rows × units
	gate, ac     []float64 // time-major steps × rows × gates·units, steps × rows × units
	hd, y        []float64

	dz, dzs, dh, dc, dx []float64
}

func newRecurrent(index int, in []int, s LayerSpec) *recurrent {
	l := &recurrent{index: uint64(index), steps: in[0], in: in[1], units: s.Units, gates: 1,
		act: Tanh, recAct: Sigmoid, useBias: s.UseBias == nil || *s.UseBias, returnSeq: s.ReturnSequences,
		unitForgetBias: s.UnitForgetBias == nil || *s.UnitForgetBias, dropout: s.Dropout, recDropout: s.RecurrentDropout,
		kInit: GlorotUniform, rInit: Orthogonal, bInit: Zeros,
		kReg: s.KernelRegularizer, rReg: s.RecurrentRegularizer, bReg: s.BiasRegularizer,
		single: s.Dtype != "float64"}
	if s.Type == "lstm" {
		l.gates = 4
	}
	if s.Activation != "" {
		l.act, _ = parseActivation(s.Activation)
	}
	if s.RecurrentActivation != "" {
		l.recAct, _ = parseActivation(s.RecurrentActivation)
	}
	for _, init := range []struct {
		name string
		to   *Initializer
	}{{s.KernelInitializer, &l.kInit}, {s.RecurrentInitializer, &l.rInit}, {s.BiasInitializer, &l.bInit}} {
		if init.name != "" {
			*init.to, _ = parseInitializer(init.name)
		}
	}
	return l
}

func (l *recurrent) width() int { return l.gates * l.units }

func (l *recurrent) outputSize() int {
	if l.returnSeq {
		return l.steps * l.units
	}
	return l.units
}

func (l *recurrent) numParams() int {
	n := (l.in + l.units) * l.width()
	if l.useBias {
		n += l.width()
	}
	return n
}

func (l *recurrent) bind(params, grads []float64) {
	g := l.width()
	nw, nu := l.in*g, l.units*g
	l.w, l.dw = params[:nw:nw], grads[:nw:nw]
	l.u, l.du = params[nw:nw+nu:nw+nu], grads[nw:nw+nu:nw+nu]
	if l.useBias {
		l.b, l.db = params[nw+nu:nw+nu+g], grads[nw+nu:nw+nu+g]
	}
}

// bind32 binds the float32 views when the layer computes in float32.
func (l *recurrent) bind32(params, grads []float32) bool {
	if !l.single {
		return false
	}
	g := l.width()
	nw, nu := l.in*g, l.units*g
	f := &l.f32
	f.wv, f.dwv = params[:nw:nw], grads[:nw:nw]
	f.uv, f.duv = params[nw:nw+nu:nw+nu], grads[nw:nw+nu:nw+nu]
	if l.useBias {
		f.bv, f.dbv = params[nw+nu:nw+nu+g], grads[nw+nu:nw+nu+g]
	}
	return true
}

func (l *recurrent) initialize(r *rand.Rand, params []float64) {
	g := l.width()
	nw, nu := l.in*g, l.units*g
	l.kInit.fill(params[:nw], l.in, g, l.in, g, r)
	l.rInit.fill(params[nw:nw+nu], l.units, g, l.units, g, r)
	if l.useBias {
		b := params[nw+nu : nw+nu+g]
		l.bInit.fill(b, 1, g, l.in, g, r)
		if l.gates == 4 && l.unitForgetBias {
			for j := l.units; j < 2*l.units; j++ {
				b[j] = 1
			}
		}
	}
}

// Mask keys: the layer's position, and which mask.
func (l *recurrent) inputKey() uint64     { return l.index<<40 | 1<<32 }
func (l *recurrent) recurrentKey() uint64 { return l.index<<40 | 2<<32 }

func (l *recurrent) forward(x []float64, rows int, p *pass) []float64 {
	T, F, U, G := l.steps, l.in, l.units, l.width()
	l.rows = rows
	l.x, l.xmask, l.hmask = x, nil, nil
	if p.train && l.dropout > 0 {
		l.xmask = grow(l.xmask, rows*F)
		dropoutMask(l.xmask, p, l.inputKey(), rows, F, l.dropout)
		l.xd = grow(l.xd, rows*T*F)
		xd := l.xd
		for r := range rows {
			m := l.xmask[r*F : (r+1)*F]
			for t := range T {
				o := (r*T + t) * F
				for j, v := range x[o : o+F] {
					xd[o+j] = v * m[j]
				}
			}
		}
		l.x = xd
	}
	if p.train && l.recDropout > 0 {
		l.hmask = grow(l.hmask, rows*U)
		dropoutMask(l.hmask, p, l.recurrentKey(), rows, U, l.recDropout)
	}
	l.projectInputs(rows)
	l.h = grow(l.h, (T+1)*rows*U)
	clear(l.h[:rows*U])
	l.z = grow(l.z, rows*G)
	l.hd = grow(l.hd, rows*U)
	if l.gates == 4 {
		l.c = grow(l.c, (T+1)*rows*U)
		clear(l.c[:rows*U])
		l.gate = grow(l.gate, T*rows*G)
		l.ac = grow(l.ac, T*rows*U)
	}
	for t := range T {
		hNext := l.h[(t+1)*rows*U : (t+2)*rows*U]
		l.stepProduct(t, rows)
		if l.gates == 1 {
			l.apply(l.act, l.z, hNext, rows, U)
			continue
		}
		gate, ac := l.gate[t*rows*G:(t+1)*rows*G], l.ac[t*rows*U:(t+1)*rows*U]
		cPrev, cNext := l.c[t*rows*U:(t+1)*rows*U], l.c[(t+1)*rows*U:(t+2)*rows*U]
		for r := range rows {
			z, g := l.z[r*G:(r+1)*G], gate[r*G:(r+1)*G]
			l.apply(l.recAct, z[:2*U], g[:2*U], 1, 2*U)
			l.apply(l.act, z[2*U:3*U], g[2*U:3*U], 1, U)
			l.apply(l.recAct, z[3*U:], g[3*U:], 1, U)
			i, f, gg, o := g[:U], g[U:2*U], g[2*U:3*U], g[3*U:]
			cp, cn := cPrev[r*U:(r+1)*U], cNext[r*U:(r+1)*U]
			for j := range U {
				cn[j] = f[j]*cp[j] + i[j]*gg[j]
			}
			a := ac[r*U : (r+1)*U]
			l.apply(l.act, cn, a, 1, U)
			h := hNext[r*U : (r+1)*U]
			for j := range U {
				h[j] = o[j] * a[j]
			}
		}
	}
	if !l.returnSeq {
		return l.h[T*rows*U : (T+1)*rows*U]
	}
	l.y = grow(l.y, rows*T*U)
	for t := range T {
		for r := range rows {
			copy(l.y[(r*T+t)*U:][:U], l.h[((t+1)*rows+r)*U:][:U])
		}
	}
	return l.y
}

// projectInputs sets xw to the input projections of every step at once,
// x·W + b, sample-major.
func (l *recurrent) projectInputs(rows int) {
	if l.single {
		l.projectInputs32(rows)
		return
	}
	T, F, G := l.steps, l.in, l.width()
	l.xw = grow(l.xw, rows*T*G)
	beta := 0.0
	if l.useBias {
		for r := range rows * T {
			copy(l.xw[r*G:(r+1)*G], l.b)
		}
		beta = 1
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, general(l.x, rows*T, F), general(l.w, F, G), beta, general(l.xw, rows*T, G))
}

// stepProduct sets z to step t's gate pre-activations, the four gates of
// an lstm in one product: h_t (after recurrent dropout)·U plus the step's
// input projection.
func (l *recurrent) stepProduct(t, rows int) {
	if l.single {
		l.stepProduct32(t, rows)
		return
	}
	T, U, G := l.steps, l.units, l.width()
	hPrev := l.h[t*rows*U : (t+1)*rows*U]
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, general(l.dropped(hPrev), rows, U), general(l.u, U, G), 0, general(l.z, rows, G))
	for r := range rows {
		z, xw := l.z[r*G:(r+1)*G], l.xw[(r*T+t)*G:][:G]
		for j, v := range xw {
			z[j] += v
		}
	}
}

// apply is a.apply, vectorised in float32 mode.
func (l *recurrent) apply(a Activation, z, y []float64, rows, width int) {
	if l.single {
		a.applyFast(z, y, rows, width)
		return
	}
	a.apply(z, y, rows, width)
}

// dropped returns h after recurrent dropout, in l.hd, or h itself.
func (l *recurrent) dropped(h []float64) []float64 {
	if l.hmask == nil {
		return h
	}
	for i, v := range h {
		l.hd[i] = v * l.hmask[i]
	}
	return l.hd
}

func (l *recurrent) backward(dy []float64, rows int, needDX bool) []float64 {
	if l.single {
		return l.backward32(dy, rows, needDX)
	}
	T, F, U, G := l.steps, l.in, l.units, l.width()
	l.backwardStart(rows)
	clear(l.du)
	for t := T - 1; t >= 0; t-- {
		dz := l.stepGradient(t, rows, dy)
		if t == 0 {
			break // h_0 is zero: no recurrent-kernel gradient, nothing earlier
		}
		hPrev := l.h[t*rows*U : (t+1)*rows*U]
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, general(l.dropped(hPrev), rows, U), general(dz, rows, G), 1, general(l.du, U, G))
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, general(dz, rows, G), general(l.u, U, G), 0, general(l.dh, rows, U))
		l.maskHidden()
	}
	l.sampleMajorGradient(rows)
	l.biasGradient(l.db, l.dzs, rows)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, general(l.x, rows*T, F), general(l.dzs, rows*T, G), 0, general(l.dw, F, G))
	if !needDX {
		return nil
	}
	l.dx = grow(l.dx, rows*T*F)
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, general(l.dzs, rows*T, G), general(l.w, F, G), 0, general(l.dx, rows*T, F))
	l.maskInput(rows)
	return l.dx
}

// backwardStart clears the carried gradients before the first step back.
func (l *recurrent) backwardStart(rows int) {
	T, U, G := l.steps, l.units, l.width()
	l.dh = grow(l.dh, rows*U)
	clear(l.dh)
	if l.gates == 4 {
		l.dc = grow(l.dc, rows*U)
		clear(l.dc)
	}
	l.dz = grow(l.dz, T*rows*G)
}

// stepGradient adds the output's share to dL/dh_{t+1} (l.dh, from the
// later steps) and returns the gates' pre-activation gradients of step t,
// time-major in l.dz.
func (l *recurrent) stepGradient(t, rows int, dy []float64) []float64 {
	T, U, G := l.steps, l.units, l.width()
	switch {
	case l.returnSeq:
		for r := range rows {
			d := l.dh[r*U : (r+1)*U]
			for j, v := range dy[(r*T+t)*U:][:U] {
				d[j] += v
			}
		}
	case t == T-1:
		copy(l.dh, dy[:rows*U])
	}
	dz := l.dz[t*rows*G : (t+1)*rows*G]
	if l.gates == 1 {
		l.act.backward(l.h[(t+1)*rows*U:(t+2)*rows*U], l.dh, dz, rows, U)
	} else {
		l.lstmStep(t, rows, dz)
	}
	return dz
}

// maskHidden applies the recurrent dropout mask to dL/dh.
func (l *recurrent) maskHidden() {
	if l.hmask != nil {
		for i, m := range l.hmask {
			l.dh[i] *= m
		}
	}
}

// sampleMajorGradient copies the gates' gradients into dzs sample-major,
// like the input, for the input projections' gradients.
func (l *recurrent) sampleMajorGradient(rows int) {
	T, G := l.steps, l.width()
	l.dzs = grow(l.dzs, rows*T*G)
	for t := range T {
		for r := range rows {
			copy(l.dzs[(r*T+t)*G:][:G], l.dz[(t*rows+r)*G:][:G])
		}
	}
}

// biasGradient writes to db the sum of the gates' gradients dz, rows·steps
// rows in either order, over samples and steps.
func (l *recurrent) biasGradient(db, dz []float64, rows int) {
	if !l.useBias {
		return
	}
	G := l.width()
	clear(db)
	for r := range rows * l.steps {
		for j, v := range dz[r*G : (r+1)*G] {
			db[j] += v
		}
	}
}

// maskInput applies the input dropout mask to dL/dx.
func (l *recurrent) maskInput(rows int) {
	if l.xmask == nil {
		return
	}
	T, F := l.steps, l.in
	for r := range rows {
		m := l.xmask[r*F : (r+1)*F]
		for t := range T {
			d := l.dx[(r*T+t)*F:][:F]
			for j := range d {
				d[j] *= m[j]
			}
		}
	}
}

// lstmStep turns dL/dh_{t+1} (l.dh) and dL/dc_{t+1} (l.dc) into the gates'
// pre-activation gradients dz of step t, and leaves dL/dc_t in l.dc.
func (l *recurrent) lstmStep(t, rows int, dz []float64) {
	U, G := l.units, l.width()
	gate, ac := l.gate[t*rows*G:(t+1)*rows*G], l.ac[t*rows*U:(t+1)*rows*U]
	cPrev := l.c[t*rows*U : (t+1)*rows*U]
	for r := range rows {
		g, d := gate[r*G:(r+1)*G], dz[r*G:(r+1)*G]
		i, f, gg, o := g[:U], g[U:2*U], g[2*U:3*U], g[3*U:]
		a, dh, dc, cp := ac[r*U:(r+1)*U], l.dh[r*U:(r+1)*U], l.dc[r*U:(r+1)*U], cPrev[r*U:(r+1)*U]
		for j := range U {
			dcj := dc[j] + dh[j]*o[j]*slope(l.act, a[j])
			d[j] = dcj * gg[j] * slope(l.recAct, i[j])
			d[U+j] = dcj * cp[j] * slope(l.recAct, f[j])
			d[2*U+j] = dcj * i[j] * slope(l.act, gg[j])
			d[3*U+j] = dh[j] * a[j] * slope(l.recAct, o[j])
			dc[j] = dcj * f[j]
		}
	}
}

// slope is the derivative of an element-wise activation at the point where
// it output y.
func slope(a Activation, y float64) float64 {
	switch a {
	case ReLU:
		if y > 0 {
			return 1
		}
		return 0
	case Sigmoid:
		return y * (1 - y)
	case Tanh:
		return 1 - y*y
	case Step:
		return 0
	default: // Linear
		return 1
	}
}

func (l *recurrent) regularized() []regSpan {
	nw, nu := l.in*l.width(), l.units*l.width()
	return regSpans(regSpan{span{0, nw}, l.kReg}, regSpan{span{nw, nu}, l.rReg},
		regSpan{span{nw + nu, l.numParams() - nw - nu}, l.bReg})
}
