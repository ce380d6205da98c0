package nn

import "math"

// penalty returns l1·Σ|w| + l2·Σw².
func (r *Regularizer) penalty(w []float64) float64 {
	if r == nil {
		return 0
	}
	var l1, l2 float64
	for _, v := range w {
		l1 += math.Abs(v)
		l2 += v * v
	}
	return r.L1*l1 + r.L2*l2
}

// addGradient adds the penalty's gradient, l1·sign(w) + 2·l2·w, to g. The
// L1 term's subgradient at w = 0 is taken as 0.
func (r *Regularizer) addGradient(w, g []float64) {
	if r == nil {
		return
	}
	g = g[:len(w)]
	for i, v := range w {
		s := 0.0
		if v > 0 {
			s = 1
		} else if v < 0 {
			s = -1
		}
		g[i] += r.L1*s + 2*r.L2*v
	}
}
