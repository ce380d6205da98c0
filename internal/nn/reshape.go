package nn

import (
	"math/rand/v2"

	"ringtrain/internal/gemm"
)

// reshape is a flatten or reshape layer. Samples are stored flat, row after
// row in C order whatever their shape, so changing the shape moves no data:
// the layer passes values through both ways, in float32 between float32
// layers (see float32Layer), converting only where a float32 layer meets
// a float64 one.
type reshape struct {
	width int
	links32
	y    []float64 // a float32 input widened for a float64 successor
	dx32 []float32 // a float64 gradient narrowed for a float32 predecessor
}

func (r *reshape) outputSize() int                  { return r.width }
func (r *reshape) numParams() int                   { return 0 }
func (r *reshape) bind(_, _ []float64)              {}
func (r *reshape) initialize(*rand.Rand, []float64) {}
func (r *reshape) regularized() []regSpan           { return nil }

func (r *reshape) produces32(in32 bool) bool { return in32 }
func (r *reshape) output32() []float32       { return r.prev.output32() }

func (r *reshape) inputGrad32() []float32 {
	if r.next != nil {
		return r.next.inputGrad32()
	}
	return r.dx32
}

func (r *reshape) forward(x []float64, rows int, _ *pass) []float64 {
	switch {
	case r.prev == nil:
		return x
	case r.next != nil:
		return nil
	}
	r.y = grow(r.y, rows*r.width)
	gemm.ToFloat64(r.y, r.prev.output32()[:rows*r.width])
	return r.y
}

func (r *reshape) backward(dy []float64, rows int, needDX bool) []float64 {
	switch {
	case !needDX:
		return nil
	case r.prev == nil:
		return dy
	case r.next == nil:
		r.dx32 = growFloat32(r.dx32, rows*r.width)
		gemm.FromFloat64(r.dx32, dy[:rows*r.width])
	}
	return nil
}
