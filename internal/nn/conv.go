package nn

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
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
// one matrix product: im2col lays every window of the batch out as a row of
// kh·kw·c values, and the kernel, stored as Keras stores it ([kh, kw, c,
// filters], that is a kh·kw·c × filters matrix), multiplies them all.
type conv2d struct {
	window
	filters      int
	act          Activation
	useBias      bool
	kInit, bInit Initializer
	kReg, bReg   *Regularizer

	k, b, dk, db []float64

	col, z, y, dz, dcol, dx []float64
}

func newConv2D(in []int, s LayerSpec) *conv2d {
	l := &conv2d{window: newWindow(in, s.KernelSize, s.Strides.or(Pair{1, 1}), s.Padding), filters: s.Filters,
		useBias: s.UseBias == nil || *s.UseBias, kReg: s.KernelRegularizer, bReg: s.BiasRegularizer, bInit: Zeros}
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

func (l *conv2d) initialize(r *rand.Rand) {
	// Keras's fans for a convolution: the window times the channels.
	fanIn, fanOut := l.patch(), l.kh*l.kw*l.filters
	l.kInit.fill(l.k, l.patch(), l.filters, fanIn, fanOut, r)
	if l.useBias {
		l.bInit.fill(l.b, 1, l.filters, fanIn, fanOut, r)
	}
}

func (l *conv2d) forward(x []float64, rows int, _ *pass) []float64 {
	m, k := rows*l.oh*l.ow, l.patch()
	l.col = grow(l.col, m*k)
	l.im2col(x, rows, l.col)
	l.z = grow(l.z, m*l.filters)
	beta := 0.0
	if l.useBias {
		for r := range m {
			copy(l.z[r*l.filters:(r+1)*l.filters], l.b)
		}
		beta = 1
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, general(l.col, m, k), general(l.k, k, l.filters), beta, general(l.z, m, l.filters))
	if l.act == Linear {
		l.y = l.z
		return l.y
	}
	l.y = grow(l.y, m*l.filters)
	l.act.apply(l.z, l.y, m, l.filters)
	return l.y
}

func (l *conv2d) backward(dy []float64, rows int, needDX bool) []float64 {
	m, k := rows*l.oh*l.ow, l.patch()
	dz := dy
	if l.act != Linear {
		l.dz = grow(l.dz, m*l.filters)
		l.act.backward(l.y, dy, l.dz, m, l.filters)
		dz = l.dz
	}
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, general(l.col, m, k), general(dz, m, l.filters), 0, general(l.dk, k, l.filters))
	if l.useBias {
		clear(l.db)
		for r := range m {
			for j, v := range dz[r*l.filters : (r+1)*l.filters] {
				l.db[j] += v
			}
		}
	}
	if !needDX {
		return nil
	}
	l.dcol = grow(l.dcol, m*k)
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, general(dz, m, l.filters), general(l.k, k, l.filters), 0, general(l.dcol, m, k))
	l.dx = grow(l.dx, rows*l.h*l.w*l.c)
	l.col2im(l.dcol, rows, l.dx)
	return l.dx
}

// im2col writes the windows of rows samples of x as the rows of col, each
// kh·kw·c values in the kernel's order (row, column, channel), zeros where
// a window overhangs the input.
func (g *window) im2col(x []float64, rows int, col []float64) {
	k := g.kh * g.kw * g.c
	in := g.h * g.w * g.c
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
						copy(row, img[(iy*g.w+ix0)*g.c:][:g.kw*g.c])
						continue
					}
					for kx := range g.kw {
						if ix := ix0 + kx; ix >= 0 && ix < g.w {
							copy(row[kx*g.c:][:g.c], img[(iy*g.w+ix)*g.c:][:g.c])
						} else {
							clear(row[kx*g.c:][:g.c])
						}
					}
				}
			}
		}
	}
}

// col2im is im2col's adjoint: it adds every row of col back into the input
// positions its values came from, overwriting dx.
func (g *window) col2im(col []float64, rows int, dx []float64) {
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
					for kx := range g.kw {
						ix := ox*g.sw - g.padLeft + kx
						if ix < 0 || ix >= g.w {
							continue
						}
						d := img[(iy*g.w+ix)*g.c:][:g.c]
						for ch, v := range src[(ky*g.kw+kx)*g.c:][:g.c] {
							d[ch] += v
						}
					}
				}
			}
		}
	}
}

func (l *conv2d) penalty() float64 { return l.kReg.penalty(l.k) + l.bReg.penalty(l.b) }

func (l *conv2d) addPenaltyGradient() {
	l.kReg.addGradient(l.k, l.dk)
	if l.useBias {
		l.bReg.addGradient(l.b, l.db)
	}
}
