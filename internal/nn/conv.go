package nn

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"ringtrain/internal/gemm"
)

// window is the geometry of a two-dimensional sliding window over an input
// of h×w positions with c channels per position (channels last, as Keras
// stores images): kh×kw windows every sh rows and sw columns, giving oh×ow
// outputs, with padTop rows and padLeft columns of padding before the
// input (and what "same" padding needs after it).
type window struct {
	h, w, c         int
	kh, kw, sh, sw  int
	oh, ow          int
	padTop, padLeft int
}

func newWindow(in []int, size, strides Pair, padding string) window {
	g := window{h: in[0], w: in[1], c: in[2], kh: size[0], kw: size[1], sh: strides[0], sw: strides[1]}
	g.oh, _ = outputExtent(g.h, g.kh, g.sh, padding)
	g.ow, _ = outputExtent(g.w, g.kw, g.sw, padding)
	if padding == "same" {
		// TensorFlow's split: the odd row or column goes at the end.
		g.padTop = max((g.oh-1)*g.sh+g.kh-g.h, 0) / 2
		g.padLeft = max((g.ow-1)*g.sw+g.kw-g.w, 0) / 2
	}
	return g
}

// conv2d is a two-dimensional convolution, y = a(x ⊛ K + b), computed as
// matrix products: im2col lays every window out as a row of kh·kw·c values,
// and the kernel, stored as Keras stores it ([kh, kw, c, filters], that is
// a kh·kw·c × filters matrix), multiplies them. The products run in float32
// through package gemm, a chunk of samples at a time (see chunkBytes),
// unless the layer's dtype is float64 (gonum's Gemm, the whole batch).
//
// In float32 the layer's outputs are float32 too, bias and ReLU (or no
// activation) added in float32 in one pass over each chunk's product, and
// go to a float32 successor (pooling, another convolution) as they are,
// as its input gradient comes back (see float32Layer); the parameters and
// their gradients stay float64, converted once a pass.
type conv2d struct {
	window
	links32
	filters      int
	act          Activation
	useBias      bool
	kInit, bInit Initializer
	kReg, bReg   *Regularizer

	k, b, dk, db []float64

	// single computes in float32 (the default, as Keras does);
	// otherwise everything is float64.
	single bool
	// chunkBytes is chunkBytes, or less in tests; colHeld is the range of
	// samples whose layout col32 holds.
	chunkBytes int
	colHeld    [2]int

	col, z, y, dz, dcol, dx []float64
	// in32 is the float32 input of the last forward pass: the previous
	// layer's output32, or x32, the float64 input narrowed.
	in32, x32                                    []float32
	col32, k32, kT32, b32, y32, dy32, dz32, dk32 []float32
	dcol32, dx32                                 []float32
	dy                                           []float64
	// kv32, bv32, dkv32 and dbv32 are the float32 views of a float32
	// model's buffers, which a single layer computes on (native): k32 and
	// dk32 are then kv32 and dkv32, with no conversion.
	kv32, bv32, dkv32, dbv32 []float32
	// b64 and db64 are a native layer's bias and bias gradient in float64.
	b64, db64 []float64
	// noBias is a layer without bias's zeros; noBiasGrad the gradient
	// its backward pass sums and drops.
	noBias, noBiasGrad []float64
}

func newConv2D(in []int, s LayerSpec) *conv2d {
	l := &conv2d{window: newWindow(in, s.KernelSize, s.Strides.or(Pair{1, 1}), s.Padding), filters: s.Filters,
		useBias: s.UseBias == nil || *s.UseBias, kReg: s.KernelRegularizer, bReg: s.BiasRegularizer, bInit: Zeros,
		single: s.Dtype != "float64", chunkBytes: chunkBytes}
	l.act, _ = parseActivation(s.Activation)
	if s.KernelInitializer != "" {
		l.kInit, _ = parseInitializer(s.KernelInitializer)
	}
	if s.BiasInitializer != "" {
		l.bInit, _ = parseInitializer(s.BiasInitializer)
	}
	return l
}

// patch is the number of values in one window: the rows of the kernel.
func (l *conv2d) patch() int { return l.kh * l.kw * l.c }

func (l *conv2d) outputSize() int { return l.oh * l.ow * l.filters }

func (l *conv2d) numParams() int {
	n := l.patch() * l.filters
	if l.useBias {
		n += l.filters
	}
	return n
}

func (l *conv2d) bind(params, grads []float64) {
	n := l.patch() * l.filters
	l.k, l.dk = params[:n:n], grads[:n:n]
	if l.useBias {
		l.b, l.db = params[n:n+l.filters], grads[n:n+l.filters]
	}
}

// bind32 binds the float32 views when the layer computes in float32.
func (l *conv2d) bind32(params, grads []float32) bool {
	if !l.single {
		return false
	}
	n := l.patch() * l.filters
	l.kv32, l.dkv32 = params[:n:n], grads[:n:n]
	if l.useBias {
		l.bv32, l.dbv32 = params[n:n+l.filters], grads[n:n+l.filters]
	}
	return true
}

func (l *conv2d) initialize(r *rand.Rand, params []float64) {
	// Keras's fans for a convolution: the window times the channels.
	fanIn, fanOut := l.patch(), l.kh*l.kw*l.filters
	n := l.patch() * l.filters
	l.kInit.fill(params[:n], l.patch(), l.filters, fanIn, fanOut, r)
	if l.useBias {
		l.bInit.fill(params[n:n+l.filters], 1, l.filters, fanIn, fanOut, r)
	}
}

func (l *conv2d) produces32(bool) bool   { return l.single }
func (l *conv2d) output32() []float32    { return l.y32 }
func (l *conv2d) inputGrad32() []float32 { return l.dx32 }

// fused reports whether the activation is applied in float32 in the
// product's epilogue (ReLU or none); the others are applied in float64.
func (l *conv2d) fused() bool { return l.act == ReLU || l.act == Linear }

func (l *conv2d) forward(x []float64, rows int, _ *pass) []float64 {
	m, k := rows*l.oh*l.ow, l.patch()
	if !l.single {
		l.y = grow(l.y, m*l.filters)
		l.col = grow(l.col, m*k)
		im2col(&l.window, x, rows, l.col)
		l.z = grow(l.z, m*l.filters)
		beta := 0.0
		if l.useBias {
			for r := range m {
				copy(l.z[r*l.filters:(r+1)*l.filters], l.b)
			}
			beta = 1
		}
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, general(l.col, m, k), general(l.k, k, l.filters), beta, general(l.z, m, l.filters))
		l.act.apply(l.z, l.y, m, l.filters)
		return l.y
	}
	in, f := l.h*l.w*l.c, l.filters
	if l.prev != nil {
		l.in32 = l.prev.output32()[:rows*in]
	} else {
		l.x32 = growFloat32(l.x32, rows*in)
		l.in32 = l.x32
	}
	l.colHeld = [2]int{-1, -1}
	switch {
	case l.kv32 != nil && l.useBias:
		l.k32, l.b32 = l.kv32, l.bv32
	case l.kv32 != nil:
		l.k32 = l.kv32
		l.b32 = growFloat32(l.b32, f)
		clear(l.b32)
	default: // a float32 layer of a float64 model
		l.k32 = growFloat32(l.k32, len(l.k))
		gemm.FromFloat64(l.k32, l.k)
		l.b32 = growFloat32(l.b32, f)
		if l.useBias {
			gemm.FromFloat64(l.b32, l.b)
		} else {
			clear(l.b32)
		}
	}
	l.y32 = growFloat32(l.y32, m*f)
	if !l.fused() {
		l.y = grow(l.y, m*f)
	}
	per := l.oh * l.ow // rows of the product per sample
	for n0, n1 := 0, 0; n0 < rows; n0 = n1 {
		n1 = l.chunkEnd(n0, rows)
		r0, r1 := n0*per, n1*per
		if l.prev == nil {
			// Converted chunk by chunk, so that im2col reads it from the cache.
			gemm.FromFloat64(l.x32[n0*in:n1*in], x[n0*in:n1*in])
		}
		col := l.colChunk(n0, n1)
		y := l.y32[r0*f : r1*f]
		gemm.Sgemm(false, false, r1-r0, f, k, col, k, l.k32, f, 0, y, f)
		if l.fused() {
			gemm.BiasReLU(y, l.b32, l.act == ReLU)
			continue
		}
		// Another activation in float64, its outputs kept for its
		// derivative.
		y64 := l.y[r0*f : r1*f]
		gemm.WidenBias(y64, y, l.bias(), false)
		l.act.applyFast(y64, y64, r1-r0, f)
		gemm.FromFloat64(y, y64)
	}
	if l.next != nil {
		return nil
	}
	if l.fused() {
		l.y = grow(l.y, m*f)
		gemm.ToFloat64(l.y, l.y32)
	}
	return l.y
}

// bias is the layer's bias, widened from a native layer's float32, or
// zeros when it has none.
func (l *conv2d) bias() []float64 {
	if l.useBias && l.bv32 != nil {
		l.b64 = grow(l.b64, l.filters)
		widen(l.b64, l.bv32)
		return l.b64
	}
	if l.useBias {
		return l.b
	}
	if len(l.noBias) != l.filters {
		l.noBias = make([]float64, l.filters)
	}
	return l.noBias
}

// chunkBytes bounds the im2col layout the float32 path makes at a time:
// enough rows for the products to run at full speed, few enough for the
// layout and its gradient to stay in the caches rather than make round
// trips through memory (at batch 128 the whole layout of the CNN's second
// convolution would be 18 MiB, and the layer 20% slower).
const chunkBytes = 2 << 20

// chunk is how many samples the float32 path lays out at a time.
func (l *conv2d) chunk() int {
	return max(1, l.chunkBytes/(4*l.oh*l.ow*l.patch()))
}

// chunkEnd is where the float32 path's chunk that starts at sample n0 of
// rows ends. The chunks are whole but for the first, so that the last, whose
// layout the backward pass finds still in place, is a whole one.
func (l *conv2d) chunkEnd(n0, rows int) int {
	c := l.chunk()
	if r := rows % c; n0 == 0 && r != 0 {
		return r
	}
	return min(rows, n0+c)
}

// colChunk lays out the windows of samples n0 to n1 of the float32 input
// with im2col, into a buffer reused from chunk to chunk, unless the buffer
// holds them already (the backward pass starts with the forward pass's
// last chunk).
func (l *conv2d) colChunk(n0, n1 int) []float32 {
	if l.colHeld == [2]int{n0, n1} {
		return l.col32
	}
	in := l.h * l.w * l.c
	l.col32 = growFloat32(l.col32, (n1-n0)*l.oh*l.ow*l.patch())
	im2col(&l.window, l.in32[n0*in:n1*in], n1-n0, l.col32)
	l.colHeld = [2]int{n0, n1}
	return l.col32
}

func (l *conv2d) backward(dy []float64, rows int, needDX bool) []float64 {
	m, k := rows*l.oh*l.ow, l.patch()
	if l.useBias {
		clear(l.db)
	}
	if !l.single {
		l.dx = grow(l.dx, rows*l.h*l.w*l.c)
		l.dz = grow(l.dz, m*l.filters)
		l.act.backward(l.y, dy, l.dz, m, l.filters)
		if l.useBias {
			for r := range m {
				for j, v := range l.dz[r*l.filters : (r+1)*l.filters] {
					l.db[j] += v
				}
			}
		}
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, general(l.col, m, k), general(l.dz, m, l.filters), 0, general(l.dk, k, l.filters))
		if !needDX {
			return nil
		}
		l.dcol = grow(l.dcol, m*k)
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, general(l.dz, m, l.filters), general(l.k, k, l.filters), 0, general(l.dcol, m, k))
		col2im(&l.window, l.dcol, rows, l.dx, addFloat64)
		return l.dx
	}
	f := l.filters
	native := l.kv32 != nil
	db := l.db
	switch {
	case !l.useBias:
		l.noBiasGrad = grow(l.noBiasGrad, f)
		db = l.noBiasGrad
		clear(db)
	case native:
		l.db64 = grow(l.db64, f)
		db = l.db64
		clear(db)
	}
	// dL/dy in float32 for ReLU and linear layers, in float64 for the
	// others, whose derivatives are taken in float64.
	var dy32 []float32
	switch {
	case l.fused() && l.next != nil:
		dy32 = l.next.inputGrad32()
	case l.fused():
		l.dy32 = growFloat32(l.dy32, m*f)
		gemm.FromFloat64(l.dy32, dy)
		dy32 = l.dy32
	case l.next != nil:
		l.dy = grow(l.dy, m*f)
		gemm.ToFloat64(l.dy, l.next.inputGrad32()[:m*f])
		dy = l.dy
	}
	l.dz32 = growFloat32(l.dz32, m*f)
	// Chunk by chunk, last to first: dL/dz, the windows laid out again
	// (cheaper than keeping the whole batch's layout from the forward pass,
	// out of cache; the last chunk's is still there), the kernel's gradient
	// accumulated, and the input's gradient, each pass over a chunk while
	// the one before has left it in the cache.
	if native {
		l.dk32 = l.dkv32
	} else {
		l.dk32 = growFloat32(l.dk32, len(l.dk))
	}
	clear(l.dk32) // for an empty batch; otherwise the first product overwrites it
	in := l.h * l.w * l.c
	if needDX {
		l.dx32 = growFloat32(l.dx32, rows*in)
		// The kernel transposed, filters × patch, once rather than in every
		// chunk's product.
		l.kT32 = growFloat32(l.kT32, len(l.k32))
		for p := range k {
			for j, v := range l.k32[p*f : (p+1)*f] {
				l.kT32[j*k+p] = v
			}
		}
	}
	per, chunk := l.oh*l.ow, l.chunk()
	for n1 := rows; ; {
		n0 := max(0, n1-chunk) // the forward pass's chunks, last first
		r0, r1 := n0*per, n1*per
		dz := l.dz32[r0*f : r1*f]
		if l.fused() {
			gemm.ReLUGrad(dz, l.y32[r0*f:r1*f], dy32[r0*f:r1*f], db, l.act == ReLU)
		} else {
			l.outputGrad(dy, db, r0, r1)
		}
		col := l.colChunk(n0, n1)
		beta := float32(1)
		if n1 == rows {
			beta = 0
		}
		gemm.Sgemm(true, false, k, f, r1-r0, col, k, dz, f, beta, l.dk32, f)
		if needDX {
			l.dcol32 = growFloat32(l.dcol32, (r1-r0)*k)
			gemm.Sgemm(false, false, r1-r0, k, f, dz, f, l.kT32, k, 0, l.dcol32, k)
			col2im(&l.window, l.dcol32, n1-n0, l.dx32[n0*in:n1*in], gemm.Add)
		}
		if n0 == 0 {
			break
		}
		n1 = n0
	}
	if native {
		if l.useBias {
			narrow(l.dbv32, db)
		}
	} else {
		gemm.ToFloat64(l.dk, l.dk32)
	}
	if !needDX || l.prev != nil {
		return nil
	}
	l.dx = grow(l.dx, rows*in)
	gemm.ToFloat64(l.dx, l.dx32)
	return l.dx
}

// outputGrad sets dz32, for the product's rows r0 to r1, to dL/dz in
// float32 and adds it to the bias gradient db in float64, in one pass,
// for an activation other than ReLU or none, from the float64 outputs y
// and their gradient dy.
func (l *conv2d) outputGrad(dy, db []float64, r0, r1 int) {
	f := l.filters
	l.dz = grow(l.dz, f)
	for r := r0; r < r1; r++ {
		y, g, dz32 := l.y[r*f:(r+1)*f], dy[r*f:(r+1)*f], l.dz32[r*f:(r+1)*f]
		d := l.dz[:f]
		if l.act == Softmax {
			l.act.backward(y, g, d, 1, f)
		} else {
			for j, v := range g {
				d[j] = v * slope(l.act, y[j])
			}
		}
		for j, v := range d {
			dz32[j] = float32(v)
			db[j] += v
		}
	}
}

// addFloat64 sets dst[i] += src[i].
func addFloat64(dst, src []float64) {
	for i, v := range src {
		dst[i] += v
	}
}

func growFloat32(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// im2col writes the windows of rows samples of x as the rows of col, each
// kh·kw·c values in the kernel's order (row, column, channel), zeros where
// a window overhangs the input.
func im2col[T float32 | float64](g *window, x []T, rows int, col []T) {
	k := g.kh * g.kw * g.c
	in := g.h * g.w * g.c
	if g.inside() {
		im2colInside(g, x, rows, col)
		return
	}
	for n := range rows {
		img := x[n*in : (n+1)*in]
		for oy := range g.oh {
			for ox := range g.ow {
				dst := col[((n*g.oh+oy)*g.ow+ox)*k:][:k]
				for ky := range g.kh {
					iy := oy*g.sh - g.padTop + ky
					row := dst[ky*g.kw*g.c:][:g.kw*g.c]
					if iy < 0 || iy >= g.h {
						clear(row)
						continue
					}
					ix0 := ox*g.sw - g.padLeft
					if ix0 >= 0 && ix0+g.kw <= g.w {
						src := img[(iy*g.w+ix0)*g.c:][:g.kw*g.c]
						if len(src) < 16 { // too short to pay for a call
							for i, v := range src {
								row[i] = v
							}
							continue
						}
						copy(row, src)
						continue
					}
					for kx := range g.kw {
						dst := row[kx*g.c:][:g.c]
						if ix := ix0 + kx; ix >= 0 && ix < g.w {
							copy(dst, img[(iy*g.w+ix)*g.c:][:g.c])
						} else {
							clear(dst)
						}
					}
				}
			}
		}
	}
}

// inside reports whether every window lies inside the input: no padding.
func (g *window) inside() bool {
	return g.padTop == 0 && g.padLeft == 0 && (g.oh-1)*g.sh+g.kh <= g.h && (g.ow-1)*g.sw+g.kw <= g.w
}

// im2colInside is im2col for windows that lie inside the input, a row of
// the kernel at a time: each window's row of kw·c values is one run of the
// input, copied by a call when it is long and value by value, without
// bounds checks, when it is short (a first convolution's single channel).
func im2colInside[T float32 | float64](g *window, x []T, rows int, col []T) {
	k, run := g.kh*g.kw*g.c, g.kw*g.c
	in, step := g.h*g.w*g.c, g.sw*g.c
	for n := range rows {
		img := x[n*in : (n+1)*in]
		for oy := range g.oh {
			out := col[(n*g.oh+oy)*g.ow*k : (n*g.oh+oy+1)*g.ow*k]
			for ky := range g.kh {
				src := img[(oy*g.sh+ky)*g.w*g.c:]
				src = src[:(g.ow-1)*step+run]
				switch {
				case run >= 16:
					for ox := range g.ow {
						copy(out[ox*k+ky*run:][:run], src[ox*step:])
					}
					continue
				case run == 3: // a 3×3 kernel over one channel
					for ox := range g.ow {
						*(*[3]T)(out[ox*k+ky*3:]) = *(*[3]T)(src[ox*step:])
					}
					continue
				}
				for ox := range g.ow {
					d, s := out[ox*k+ky*run:][:run:run], src[ox*step:][:run:run]
					for i := range d {
						d[i] = s[i]
					}
				}
			}
		}
	}
}

// col2im is im2col's adjoint: it adds every row of col back into the input
// positions its values came from, overwriting dx; add adds a run of values.
func col2im[T float32 | float64](g *window, col []T, rows int, dx []T, add func(dst, src []T)) {
	clear(dx)
	k := g.kh * g.kw * g.c
	in := g.h * g.w * g.c
	for n := range rows {
		img := dx[n*in : (n+1)*in]
		for oy := range g.oh {
			for ox := range g.ow {
				src := col[((n*g.oh+oy)*g.ow+ox)*k:][:k]
				for ky := range g.kh {
					iy := oy*g.sh - g.padTop + ky
					if iy < 0 || iy >= g.h {
						continue
					}
					if ix0 := ox*g.sw - g.padLeft; ix0 >= 0 && ix0+g.kw <= g.w {
						// The window's row lies inside the input: one run.
						d, v := img[(iy*g.w+ix0)*g.c:][:g.kw*g.c], src[ky*g.kw*g.c:][:g.kw*g.c]
						if len(d) < 16 { // too short to pay for a call
							for i := range d {
								d[i] += v[i]
							}
							continue
						}
						add(d, v)
						continue
					}
					for kx := range g.kw {
						ix := ox*g.sw - g.padLeft + kx
						if ix < 0 || ix >= g.w {
							continue
						}
						d, v := img[(iy*g.w+ix)*g.c:][:g.c], src[(ky*g.kw+kx)*g.c:][:g.c]
						if g.c < 16 { // too short to pay for a call
							for ch := range d {
								d[ch] += v[ch]
							}
							continue
						}
						add(d, v)
					}
				}
			}
		}
	}
}

func (l *conv2d) regularized() []regSpan {
	k := l.patch() * l.filters
	return regSpans(regSpan{span{0, k}, l.kReg}, regSpan{span{k, l.numParams() - k}, l.bReg})
}
