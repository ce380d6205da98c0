package nn

import "math/rand/v2"

// activation applies an activation function as a layer of its own.
type activation struct {
	width int
	act   Activation
	y, dx []float64
}

func (a *activation) outputSize() int                  { return a.width }
func (a *activation) numParams() int                   { return 0 }
func (a *activation) bind(_, _ []float64)              {}
func (a *activation) initialize(*rand.Rand, []float64) {}
func (a *activation) regularized() []regSpan           { return nil }

func (a *activation) forward(x []float64, rows int, _ *pass) []float64 {
	a.y = grow(a.y, rows*a.width)
	a.act.apply(x, a.y, rows, a.width)
	return a.y
}

func (a *activation) backward(dy []float64, rows int, needDX bool) []float64 {
	if !needDX {
		return nil
	}
	a.dx = grow(a.dx, rows*a.width)
	a.act.backward(a.y, dy, a.dx, rows, a.width)
	return a.dx
}
