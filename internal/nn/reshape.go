package nn

import "math/rand/v2"

// reshape is a flatten or reshape layer. Samples are stored flat, row after
// row in C order whatever their shape, so changing the shape moves no data:
// the layer passes values through both ways.
type reshape struct{ width int }

func (r *reshape) outputSize() int       { return r.width }
func (r *reshape) numParams() int        { return 0 }
func (r *reshape) bind(_, _ []float64)   {}
func (r *reshape) initialize(*rand.Rand) {}
func (r *reshape) penalty() float64      { return 0 }
func (r *reshape) addPenaltyGradient()   {}

func (r *reshape) forward(x []float64, _ int, _ *pass) []float64 { return x }

func (r *reshape) backward(dy []float64, _ int, needDX bool) []float64 {
	if !needDX {
		return nil
	}
	return dy
}
