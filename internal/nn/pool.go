package nn

import (
	"math/rand/v2"

	"ringtrain/internal/gemm"
)

// maxPool2D keeps the largest value of each window, channel by channel.
// Windows overhanging the input ("same" padding) ignore the padding, as
// TensorFlow does. The gradient flows to the position that held the
// maximum (the first, in row-major window order, on a tie).
//
// Fed by a float32 layer it computes in float32 (see float32Layer);
// otherwise in float64. The backward pass finds where each maximum came
// from again, from the input and output it compared, rather than storing
// indices in the forward pass: the first value of the window equal to the
// maximum is the one it came from, as only a strictly greater value
// replaces the first (and a NaN maximum can only be the first value).
// 2×2 windows with stride 2 that fit the input, the usual pooling, run
// vectorised across channels (gemm.MaxPool2x2).
type maxPool2D struct {
	window
	links32
	x               []float64 // the float64 input of the last forward pass
	y, dx           []float64
	y32, dy32, dx32 []float32
}

func newMaxPool2D(in []int, s LayerSpec) *maxPool2D {
	size := s.PoolSize.or(Pair{2, 2})
	return &maxPool2D{window: newWindow(in, size, s.Strides.or(size), s.Padding)}
}

func (p *maxPool2D) outputSize() int                  { return p.oh * p.ow * p.c }
func (p *maxPool2D) numParams() int                   { return 0 }
func (p *maxPool2D) bind(_, _ []float64)              {}
func (p *maxPool2D) initialize(*rand.Rand, []float64) {}
func (p *maxPool2D) regularized() []regSpan           { return nil }

func (p *maxPool2D) produces32(in32 bool) bool { return in32 }
func (p *maxPool2D) output32() []float32       { return p.y32 }
func (p *maxPool2D) inputGrad32() []float32    { return p.dx32 }

func (p *maxPool2D) forward(x []float64, rows int, _ *pass) []float64 {
	out := rows * p.outputSize()
	if p.prev == nil {
		p.x = x
		p.y = grow(p.y, out)
		poolForward(&p.window, x, rows, p.y)
		return p.y
	}
	p.y32 = growFloat32(p.y32, out)
	poolForward(&p.window, p.prev.output32(), rows, p.y32)
	if p.next != nil {
		return nil
	}
	p.y = grow(p.y, out)
	gemm.ToFloat64(p.y, p.y32)
	return p.y
}

func (p *maxPool2D) backward(dy []float64, rows int, needDX bool) []float64 {
	if !needDX {
		return nil
	}
	in := rows * p.h * p.w * p.c
	if p.prev == nil {
		p.dx = grow(p.dx, in)
		poolBackward(&p.window, p.x, p.y, dy, rows, p.dx)
		return p.dx
	}
	var dy32 []float32
	if p.next != nil {
		dy32 = p.next.inputGrad32()
	} else {
		p.dy32 = growFloat32(p.dy32, rows*p.outputSize())
		gemm.FromFloat64(p.dy32, dy)
		dy32 = p.dy32
	}
	p.dx32 = growFloat32(p.dx32, in)
	poolBackward(&p.window, p.prev.output32(), p.y32, dy32, rows, p.dx32)
	return nil
}

// pairs reports whether the windows are 2×2 with stride 2 and lie inside
// the input (no padding before it; what is left over at the end, an odd
// row or column, belongs to no window).
func (g *window) pairs() bool {
	return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.padTop == 0 && g.padLeft == 0 &&
		2*g.oh <= g.h && 2*g.ow <= g.w
}

// poolForward writes the maximum of each window of rows samples of x to y.
func poolForward[T float32 | float64](g *window, x []T, rows int, y []T) {
	in, out := g.h*g.w*g.c, g.oh*g.ow*g.c
	x32, is32 := any(x).([]float32)
	fast := is32 && g.pairs()
	for n := range rows {
		if fast {
			img, yn := x32[n*in:(n+1)*in], any(y).([]float32)[n*out:(n+1)*out]
			for oy := range g.oh {
				row := 2 * oy * g.w * g.c
				gemm.MaxPool2x2(yn[oy*g.ow*g.c:], img[row:], img[row+g.w*g.c:], g.ow, g.c)
			}
			continue
		}
		img, yn := x[n*in:(n+1)*in], y[n*out:(n+1)*out]
		for oy := range g.oh {
			y0, y1 := max(oy*g.sh-g.padTop, 0), min(oy*g.sh-g.padTop+g.kh, g.h)
			for ox := range g.ow {
				x0, x1 := max(ox*g.sw-g.padLeft, 0), min(ox*g.sw-g.padLeft+g.kw, g.w)
				o := (oy*g.ow + ox) * g.c
				dst := yn[o : o+g.c]
				first := (y0*g.w + x0) * g.c
				copy(dst, img[first:first+g.c])
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						base := (iy*g.w + ix) * g.c
						for ch, v := range img[base : base+g.c] {
							if v > dst[ch] {
								dst[ch] = v
							}
						}
					}
				}
			}
		}
	}
}

// poolBackward overwrites dx with the gradient of rows samples' inputs x,
// given their maxima y and the maxima's gradient dy: each window's dy goes
// to the first of its values equal to its maximum, or to its first value
// when the maximum is NaN.
func poolBackward[T float32 | float64](g *window, x, y, dy []T, rows int, dx []T) {
	in, out := g.h*g.w*g.c, g.oh*g.ow*g.c
	x32, is32 := any(x).([]float32)
	if is32 && g.pairs() {
		y32, dy32, dx32 := any(y).([]float32), any(dy).([]float32), any(dx).([]float32)
		span, used := g.w*g.c, 2*g.ow*g.c // a row's values; those in windows
		for n := range rows {
			img, d := x32[n*in:(n+1)*in], dx32[n*in:(n+1)*in]
			yn, dyn := y32[n*out:(n+1)*out], dy32[n*out:(n+1)*out]
			for oy := range g.oh {
				top, bottom := 2*oy*span, (2*oy+1)*span
				o := oy * g.ow * g.c
				gemm.MaxPool2x2Grad(d[top:], d[bottom:], img[top:], img[bottom:], yn[o:], dyn[o:], g.ow, g.c)
				clear(d[top+used : top+span])
				clear(d[bottom+used : bottom+span])
			}
			clear(d[2*g.oh*span:])
		}
		return
	}
	clear(dx[:rows*in])
	for n := range rows {
		img, d := x[n*in:(n+1)*in], dx[n*in:(n+1)*in]
		yn, dyn := y[n*out:(n+1)*out], dy[n*out:(n+1)*out]
		for oy := range g.oh {
			y0, y1 := max(oy*g.sh-g.padTop, 0), min(oy*g.sh-g.padTop+g.kh, g.h)
			for ox := range g.ow {
				x0, x1 := max(ox*g.sw-g.padLeft, 0), min(ox*g.sw-g.padLeft+g.kw, g.w)
				o := (oy*g.ow + ox) * g.c
				for ch := range g.c {
					m := yn[o+ch]
					at := (y0*g.w+x0)*g.c + ch
					if m == m {
						at = argEqual(img, m, g, y0, y1, x0, x1, ch)
					}
					d[at] += dyn[o+ch]
				}
			}
		}
	}
}

// argEqual is the index in img of the first value of channel ch in the
// window [y0, y1) × [x0, x1) equal to m, which one is.
func argEqual[T float32 | float64](img []T, m T, g *window, y0, y1, x0, x1, ch int) int {
	for iy := y0; iy < y1; iy++ {
		for ix := x0; ix < x1; ix++ {
			if i := (iy*g.w+ix)*g.c + ch; img[i] == m {
				return i
			}
		}
	}
	panic("nn: a window's maximum is none of its values")
}
