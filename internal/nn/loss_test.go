package nn

import (
	"math"
	"testing"
)

func allFinite(v []float64) bool {
	for _, x := range v {
		if !finite(x) {
			return false
		}
	}
	return true
}

// TestCrossEntropyStableForHugeLogits feeds logits of ±1000 through the
// fused softmax cross-entropies: loss and gradients stay finite and exact.
func TestCrossEntropyStableForHugeLogits(t *testing.T) {
	z := []float64{1000, -1000, 0, 1000, -1000, 999}
	y := make([]float64, len(z))
	Softmax.apply(z, y, 2, 3)
	for _, kind := range []string{SparseCategoricalCrossentropy, CategoricalCrossentropy} {
		l := newLoss(kind, Softmax)
		b := &Batch{Rows: 2, Labels: []int{1, 2}}
		loss, g := l.compute(z, y, nil, b, 3, 0.5, true)
		// Row 0: label logit −1000 against a maximum of 1000: loss 2000.
		// Row 1: logsumexp(−1000, 999, 1000) − 999 = log(1 + e) to double
		// precision.
		want := (2000 + math.Log1p(math.E)) / 2
		if !finite(loss) || math.Abs(loss-want) > 1e-9 {
			t.Errorf("%s: loss %v, want %v", kind, loss, want)
		}
		if !allFinite(g) {
			t.Errorf("%s: gradient %v is not finite", kind, g)
		}
		// dL/dz = (softmax − onehot)/rows.
		if math.Abs(g[0]-0.5) > 1e-12 || math.Abs(g[1]+0.5) > 1e-12 {
			t.Errorf("%s: gradient of row 0 %v, want [0.5 −0.5 0]", kind, g[:3])
		}
	}
}

// TestLossValues checks each loss on a hand-computed example.
func TestLossValues(t *testing.T) {
	y := []float64{0.7, 0.2, 0.1}
	b := &Batch{Rows: 1, Labels: []int{0}}
	cases := []struct {
		kind string
		act  Activation
		want float64
	}{
		{SparseCategoricalCrossentropy, Linear, -math.Log(0.7)},
		{CategoricalCrossentropy, Linear, -math.Log(0.7)},
		{MeanSquaredError, Linear, (0.09 + 0.04 + 0.01) / 3},
	}
	for _, c := range cases {
		l := newLoss(c.kind, c.act)
		got, _ := l.compute(y, y, nil, b, 3, 1, false)
		if math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%s = %v, want %v", c.kind, got, c.want)
		}
	}
	// A probability of 0 is clipped to 1e-7, as Keras does.
	l := newLoss(SparseCategoricalCrossentropy, Linear)
	got, g := l.compute([]float64{0, 1}, []float64{0, 1}, nil, b, 2, 1, true)
	if math.Abs(got+math.Log(1e-7)) > 1e-12 || !allFinite(g) {
		t.Errorf("clipped loss %v, gradient %v", got, g)
	}
}

func TestSigmoidStableForLargeInputs(t *testing.T) {
	for _, v := range []float64{-1000, -40, 0, 40, 1000} {
		s := sigmoid(v)
		if !finite(s) || s < 0 || s > 1 {
			t.Errorf("sigmoid(%v) = %v", v, s)
		}
	}
}
