package gemm

import "math"

// BiasReLU adds bias to every row of y, whose rows hold len(bias) values,
// and with relu then sets negative values to zero (NaN and −0 stay as
// they are), in place: the epilogue of a layer's float32 product.
func BiasReLU(y, bias []float32, relu bool) {
	n := len(bias)
	if n == 0 {
		return
	}
	rows := len(y) / n
	y = y[:rows*n]
	if useAsm && n%8 == 0 && rows > 0 {
		biasReLU8(&y[0], &bias[0], rows, n, relu)
		return
	}
	for r := range rows {
		row := y[r*n : (r+1)*n]
		if !relu {
			for j, v := range row {
				row[j] = v + bias[j]
			}
			continue
		}
		for j, v := range row {
			row[j] = reluBits(v + bias[j])
		}
	}
}

// reluBits is 0 where v < 0, else v (NaN and −0 stay), selecting bits so
// that the compiler emits a conditional move rather than a branch the
// signs of a layer's outputs would mispredict half the time.
func reluBits(v float32) float32 {
	b := math.Float32bits(v)
	if v < 0 {
		b = 0
	}
	return math.Float32frombits(b)
}

// ReLUGrad turns the gradient dy of a layer's float32 outputs y into the
// gradient dz of its pre-activations, row by row (rows of len(db) values):
// with relu dy where y > 0 and zero elsewhere (ReLU's derivative at its
// output), otherwise dy unchanged; and adds dz's rows to db in float64
// (the bias gradient). dz may be dy.
func ReLUGrad(dz, y, dy []float32, db []float64, relu bool) {
	n := len(db)
	if n == 0 {
		return
	}
	rows := len(dy) / n
	dz, dy = dz[:rows*n], dy[:rows*n]
	if relu {
		y = y[:rows*n]
	}
	if useAsm && n%8 == 0 && rows > 0 {
		var yp *float32
		if relu {
			yp = &y[0]
		}
		reluGrad8(&dz[0], yp, &dy[0], &db[0], rows, n, relu)
		return
	}
	for r := range rows {
		d, g := dz[r*n:(r+1)*n], dy[r*n:(r+1)*n]
		if !relu {
			for j, v := range g {
				d[j] = v
				db[j] += float64(v)
			}
			continue
		}
		yr := y[r*n : (r+1)*n]
		for j, v := range g {
			// v where y > 0, else 0, as bits (see reluBits).
			b := math.Float32bits(v)
			if !(yr[j] > 0) {
				b = 0
			}
			v = math.Float32frombits(b)
			d[j] = v
			db[j] += float64(v)
		}
	}
}

// MaxPool2x2 is one row of a 2×2 max-pooling with stride 2 over values
// stored channels last: y's ow positions of c channels each take the
// largest of the four values at positions 2·ox and 2·ox+1 of the input
// rows top and bottom, channel by channel, in the order top-left,
// top-right, bottom-left, bottom-right, a later value replacing the
// maximum only when strictly greater (so a NaN stays only where it comes
// first).
func MaxPool2x2(y, top, bottom []float32, ow, c int) {
	y, top, bottom = y[:ow*c], top[:2*ow*c], bottom[:2*ow*c]
	if useAsm && c%8 == 0 && ow > 0 {
		maxPool8(&y[0], &top[0], &bottom[0], ow, c)
		return
	}
	for ox := range ow {
		t, b, out := top[2*ox*c:], bottom[2*ox*c:], y[ox*c:(ox+1)*c]
		for ch := range out {
			m := t[ch]
			for _, v := range [3]float32{t[c+ch], b[ch], b[c+ch]} {
				if v > m {
					m = v
				}
			}
			out[ch] = m
		}
	}
}

// MaxPool2x2Grad is MaxPool2x2's gradient for the same row: it writes
// every value of the four positions of each window into dxTop and
// dxBottom (laid out as top and bottom), dy where the window's maximum y
// came from (the first value equal to it, or the first of the window when
// it is NaN) and zero elsewhere.
func MaxPool2x2Grad(dxTop, dxBottom, top, bottom, y, dy []float32, ow, c int) {
	dxTop, dxBottom = dxTop[:2*ow*c], dxBottom[:2*ow*c]
	top, bottom, y, dy = top[:2*ow*c], bottom[:2*ow*c], y[:ow*c], dy[:ow*c]
	if useAsm && c%8 == 0 && ow > 0 {
		maxPoolGrad8(&dxTop[0], &dxBottom[0], &top[0], &bottom[0], &y[0], &dy[0], ow, c)
		return
	}
	for ox := range ow {
		o := 2 * ox * c
		for ch := range c {
			m, g := y[ox*c+ch], dy[ox*c+ch]
			at := [4]*float32{&dxTop[o+ch], &dxTop[o+c+ch], &dxBottom[o+ch], &dxBottom[o+c+ch]}
			vals := [4]float32{top[o+ch], top[o+c+ch], bottom[o+ch], bottom[o+c+ch]}
			hit := 0
			if m == m { // otherwise the first value, a NaN
				for hit < 3 && vals[hit] != m {
					hit++
				}
			}
			for i, p := range at {
				*p = 0
				if i == hit {
					*p = g
				}
			}
		}
	}
}

// SparseAxpy adds to dst, for each i in order, float32(val[i]) times row
// col[i] of w, whose rows hold len(dst) values: dst[j] += a·w[col[i]·n+j],
// each product and sum rounded to float32 as a Go loop rounds them. It is
// a narrow first layer's forward pass over one sparse input row; the
// assembly spares the race detector's instrumentation of every element.
func SparseAxpy(dst []float32, col []int32, val []float64, w []float32) {
	n := len(dst)
	if n == 0 || len(col) == 0 {
		return
	}
	val = val[:len(col)]
	if useAsm {
		if !sparseAxpy(&dst[0], &col[0], &val[0], &w[0], len(col), n, len(w)/n) {
			panic("gemm: SparseAxpy: column out of range")
		}
		return
	}
	for i, c := range col {
		axpy(dst, float32(val[i]), w[int(c)*n:(int(c)+1)*n])
	}
}

// SparseOuter adds float32(val[i])·src to row col[i] of dst, whose rows
// hold len(src) values, for each i in order, rounding as SparseAxpy does:
// a narrow first layer's kernel gradient for one sparse input row.
func SparseOuter(dst []float32, col []int32, val []float64, src []float32) {
	n := len(src)
	if n == 0 || len(col) == 0 {
		return
	}
	val = val[:len(col)]
	if useAsm {
		if !sparseOuter(&dst[0], &col[0], &val[0], &src[0], len(col), n, len(dst)/n) {
			panic("gemm: SparseOuter: column out of range")
		}
		return
	}
	for i, c := range col {
		axpy(dst[int(c)*n:(int(c)+1)*n], float32(val[i]), src)
	}
}

// axpy sets dst[j] += a·src[j] for every j < len(dst), rounding the
// product before the sum as the assembly does: the explicit conversion
// keeps the compiler from fusing them into an FMA (GOAMD64=v3).
func axpy(dst []float32, a float32, src []float32) {
	src = src[:len(dst)]
	for j, v := range src {
		dst[j] += float32(a * v)
	}
}

// Finite32 reports whether no value of v is NaN or ±Inf, 32 values at a
// time where the machine allows (a test of the exponent bits, as fast as
// the values can be read).
func Finite32(v []float32) bool {
	done := 0
	if useAsm && len(v) >= 32 {
		done = len(v) &^ 31
		if !finite32(&v[0], done) {
			return false
		}
	}
	return Finite(v[done:])
}

// Finite reports whether no value of v is NaN or ±Inf, in Go: x−x is 0
// for a finite x and NaN otherwise, and a sum of such terms is 0 only
// when they all are (four running sums, which the CPU adds side by side,
// and no branch per value).
func Finite[T float32 | float64](v []T) bool {
	var a, b, c, d T
	i := 0
	for ; i+4 <= len(v); i += 4 {
		a += v[i] - v[i]
		b += v[i+1] - v[i+1]
		c += v[i+2] - v[i+2]
		d += v[i+3] - v[i+3]
	}
	for ; i < len(v); i++ {
		a += v[i] - v[i]
	}
	return a+b+c+d == 0
}
