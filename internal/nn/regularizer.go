package nn

import "math"

// penalty returns l1·Σ|w| + l2·Σw², summed in float64 whatever T.
func penalty[T float](r *Regularizer, w []T) float64 {
	if r == nil {
		return 0
	}
	var l1, l2 float64
	for _, v := range w {
		x := float64(v)
		l1 += math.Abs(x)
		l2 += x * x
	}
	return r.L1*l1 + r.L2*l2
}

// addPenaltyGradient adds the penalty's gradient, l1·sign(w) + 2·l2·w, to
// g, computed in T. The L1 term's subgradient at w = 0 is taken as 0.
func addPenaltyGradient[T float](r *Regularizer, w, g []T) {
	if r == nil {
		return
	}
	g = g[:len(w)]
	l1, l2 := T(r.L1), 2*T(r.L2)
	for i, v := range w {
		var s T
		if v > 0 {
			s = 1
		} else if v < 0 {
			s = -1
		}
		g[i] += l1*s + l2*v
	}
}
