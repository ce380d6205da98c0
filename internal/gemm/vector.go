package gemm

import "math"

// Add sets dst[i] += src[i] for every i < len(src); dst must be at least as
// long.
func Add(dst, src []float32) {
	dst = dst[:len(src)]
	n := 0
	if useAsm && len(src) >= 8 {
		n = len(src) &^ 7
		add8(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] += src[i]
	}
}

// FromFloat64 sets dst[i] = float32(src[i]) for every i < len(src).
func FromFloat64(dst []float32, src []float64) {
	dst = dst[:len(src)]
	n := 0
	if useAsm && len(src) >= 4 {
		n = len(src) &^ 3
		narrow4(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] = float32(src[i])
	}
}

// ToFloat64 sets dst[i] = float64(src[i]) for every i < len(src).
func ToFloat64(dst []float64, src []float32) {
	dst = dst[:len(src)]
	n := 0
	if useAsm && len(src) >= 4 {
		n = len(src) &^ 3
		widen4(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] = float64(src[i])
	}
}

// WidenBias sets dst = float64(src) + bias row by row, and with relu then
// sets negative values to zero (NaN and −0 stay as they are): src and dst
// hold rows of len(bias) values.
func WidenBias(dst []float64, src []float32, bias []float64, relu bool) {
	n := len(bias)
	if n == 0 {
		return
	}
	rows := len(src) / n
	dst, src = dst[:rows*n], src[:rows*n]
	if useAsm && n%4 == 0 && rows > 0 {
		widenBias4(&dst[0], &src[0], &bias[0], rows, n, relu)
		return
	}
	for r := range rows {
		d, s := dst[r*n:(r+1)*n], src[r*n:(r+1)*n]
		for j, v := range s {
			x := float64(v) + bias[j]
			if relu && !(x >= 0 || x != x) {
				x = 0
			}
			d[j] = x
		}
	}
}

// NarrowGrad turns the float64 gradient dy of a layer's outputs into the
// float32 gradient dst of its pre-activations, row by row, and adds it to
// db, whose length is the rows' (the bias gradient). With relu it passes
// dy[i] where y[i] > 0 and zero elsewhere (ReLU's derivative at its
// output y); otherwise dy unchanged.
func NarrowGrad(dst []float32, db, y, dy []float64, relu bool) {
	n := len(db)
	if n == 0 {
		return
	}
	rows := len(dy) / n
	dst, y, dy = dst[:rows*n], y[:rows*n], dy[:rows*n]
	if useAsm && n%4 == 0 && rows > 0 {
		narrowGrad4(&dst[0], &db[0], &y[0], &dy[0], rows, n, relu)
		return
	}
	for r := range rows {
		d, ys, g := dst[r*n:(r+1)*n], y[r*n:(r+1)*n], dy[r*n:(r+1)*n]
		for j, v := range g {
			if relu && !(ys[j] > 0) {
				v = 0
			}
			d[j] = float32(v)
			db[j] += v
		}
	}
}

// AdamUpdate is Adam's update of every parameter, as package nn defines
// it, four values at a time where the machine allows:
//
//	m ← m + (g − m)·c1;  v ← v + (g² − v)·c2;  p ← p − α·m / (√v + ε)
//
// with the operations in this order and no fused multiply-adds, so that
// the result is bit-identical to the same loop in Go. All slices hold at
// least len(g) values.
func AdamUpdate(p, g, m, v []float64, c1, c2, alpha, eps float64) {
	n := len(g)
	p, m, v = p[:n], m[:n], v[:n]
	done := 0
	if useAsm && n >= 4 {
		done = n &^ 3
		adam4(&p[0], &g[0], &m[0], &v[0], done, &[4]float64{c1, c2, alpha, eps})
	}
	for i := done; i < n; i++ {
		gi := g[i]
		// The conversions round each product, so that no compiler
		// fuses it into a multiply-add the assembly does not do
		// (allowed by the spec, done under GOAMD64=v3).
		mi := m[i] + float64((gi-m[i])*c1)
		vi := v[i] + float64((float64(gi*gi)-v[i])*c2)
		m[i], v[i] = mi, vi
		p[i] -= alpha * mi / (math.Sqrt(vi) + eps)
	}
}

// AdamUpdate32 is AdamUpdate in float32, eight values at a time where the
// machine allows, bit-identical to the same loop in Go (float32 square
// roots are correctly rounded either way).
func AdamUpdate32(p, g, m, v []float32, c1, c2, alpha, eps float32) {
	n := len(g)
	AdamUpdate32Keeping(p, g, m, v, p[:n], m[:n], v[:n], c1, c2, alpha, eps)
}

// AdamUpdate32Keeping is AdamUpdate32 that first copies the first len(g)
// values of p, m and v, as they are before the update, to oldP, oldM and
// oldV: a worker keeps the state it can roll a step back to in the same
// pass over memory as the update, instead of a copy before it. Each old
// slice must hold len(g) values and be p, m or v themselves (no copy) or
// not overlap them.
func AdamUpdate32Keeping(p, g, m, v, oldP, oldM, oldV []float32, c1, c2, alpha, eps float32) {
	n := len(g)
	p, m, v = p[:n], m[:n], v[:n]
	oldP, oldM, oldV = oldP[:n], oldM[:n], oldV[:n]
	done := 0
	if useAsm && n >= 8 {
		done = n &^ 7
		adam8(&p[0], &g[0], &m[0], &v[0], &oldP[0], &oldM[0], &oldV[0], done, &[4]float32{c1, c2, alpha, eps})
	}
	for i := done; i < n; i++ {
		oldP[i], oldM[i], oldV[i] = p[i], m[i], v[i]
		gi := g[i]
		mi := m[i] + float32((gi-m[i])*c1) // rounded: see AdamUpdate
		vi := v[i] + float32((float32(gi*gi)-v[i])*c2)
		m[i], v[i] = mi, vi
		p[i] -= alpha * mi / (float32(math.Sqrt(float64(vi))) + eps)
	}
}
