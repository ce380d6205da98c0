package nn

import "math/rand/v2"

// maxPool2D keeps the largest value of each window, channel by channel.
// Windows overhanging the input ("same" padding) ignore the padding, as
// TensorFlow does. The gradient flows to the position that held the
// maximum (the first, in row-major window order, on a tie).
type maxPool2D struct {
	window
	arg   []int32 // per output value, the index of its maximum within the sample
	y, dx []float64
}

func newMaxPool2D(in []int, s LayerSpec) *maxPool2D {
	size := s.PoolSize.or(Pair{2, 2})
	return &maxPool2D{window: newWindow(in, size, s.Strides.or(size), s.Padding)}
}

func (p *maxPool2D) outputSize() int       { return p.oh * p.ow * p.c }
func (p *maxPool2D) numParams() int        { return 0 }
func (p *maxPool2D) bind(_, _ []float64)   {}
func (p *maxPool2D) initialize(*rand.Rand) {}
func (p *maxPool2D) penalty() float64      { return 0 }
func (p *maxPool2D) addPenaltyGradient()   {}

func (p *maxPool2D) forward(x []float64, rows int, _ *pass) []float64 {
	in, out := p.h*p.w*p.c, p.outputSize()
	p.y = grow(p.y, rows*out)
	if cap(p.arg) < rows*out {
		p.arg = make([]int32, rows*out)
	}
	p.arg = p.arg[:rows*out]
	for n := range rows {
		img, y, arg := x[n*in:(n+1)*in], p.y[n*out:(n+1)*out], p.arg[n*out:(n+1)*out]
		for oy := range p.oh {
			y0, y1 := max(oy*p.sh-p.padTop, 0), min(oy*p.sh-p.padTop+p.kh, p.h)
			for ox := range p.ow {
				x0, x1 := max(ox*p.sw-p.padLeft, 0), min(ox*p.sw-p.padLeft+p.kw, p.w)
				o := (oy*p.ow + ox) * p.c
				p.poolWindow(img, y[o:o+p.c], arg[o:o+p.c], y0, y1, x0, x1)
			}
		}
	}
	return p.y
}

// poolWindow sets y and arg, one value per channel, to the maximum of the
// window [y0, y1) × [x0, x1) of img and its index: the window's first
// position, replaced only by a strictly greater value, channel by channel
// in the inner loop, where the values lie next to each other.
func (p *maxPool2D) poolWindow(img, y []float64, arg []int32, y0, y1, x0, x1 int) {
	first := (y0*p.w + x0) * p.c
	copy(y, img[first:first+p.c])
	for ch := range arg {
		arg[ch] = int32(first + ch)
	}
	for iy := y0; iy < y1; iy++ {
		for ix := x0; ix < x1; ix++ {
			base := (iy*p.w + ix) * p.c
			if base == first {
				continue
			}
			for ch, v := range img[base : base+p.c] {
				if v > y[ch] {
					y[ch], arg[ch] = v, int32(base+ch)
				}
			}
		}
	}
}

func (p *maxPool2D) backward(dy []float64, rows int, needDX bool) []float64 {
	if !needDX {
		return nil
	}
	in, out := p.h*p.w*p.c, p.outputSize()
	p.dx = grow(p.dx, rows*in)
	clear(p.dx)
	for n := range rows {
		dx := p.dx[n*in : (n+1)*in]
		for i, a := range p.arg[n*out : (n+1)*out] {
			dx[a] += dy[n*out+i]
		}
	}
	return p.dx
}
