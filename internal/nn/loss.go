package nn

import (
	"fmt"
	"math"
)

// The losses, by their Keras names. Each is the mean over the batch of a
// per-sample loss.
const (
	// SparseCategoricalCrossentropy is −log p[label] for integer labels.
	SparseCategoricalCrossentropy = "sparse_categorical_crossentropy"
	// CategoricalCrossentropy is −Σ t·log p for target distributions t
	// (one-hot labels by default).
	CategoricalCrossentropy = "categorical_crossentropy"
	// MeanSquaredError is the mean over outputs of (y − t)².
	MeanSquaredError = "mean_squared_error"
)

// probabilityEpsilon clips probabilities away from 0 and 1 where a
// cross-entropy is computed from probabilities, as Keras does.
const probabilityEpsilon = 1e-7

// loss computes the mean loss of a batch from the output layer and the
// gradient that starts back-propagation.
//
// When the output activation is softmax and the loss a cross-entropy, the two
// are fused: the loss is computed from the logits z as logsumexp(z) − z[label],
// which stays finite for logits of any size, and the gradient handed back is
// dL/dz = (softmax(z) − t)/rows, skipping softmax's Jacobian.
type loss struct {
	kind  string
	fused bool
	grad  []float64
}

func newLoss(kind string, outputActivation Activation) *loss {
	fused := outputActivation == Softmax && (kind == SparseCategoricalCrossentropy || kind == CategoricalCrossentropy)
	return &loss{kind: kind, fused: fused}
}

// target returns the target of row r, output j: Targets when given, else the
// one-hot encoding of Labels.
func target(b *Batch, r, j, width int) float64 {
	if b.Targets != nil {
		return b.Targets[r*width+j]
	}
	if b.Labels[r] == j {
		return 1
	}
	return 0
}

// checkLabel panics when a label does not index an output.
func checkLabel(label, width int) {
	if label < 0 || label >= width {
		panic(fmt.Sprintf("nn: label %d outside the %d outputs of the model", label, width))
	}
}

// compute returns scale times the sum of the per-sample losses over the
// batch of logits z and outputs y (rows×width each), and, when wantGrad, the
// gradient of that to back-propagate: dL/dz when fused, dL/dy otherwise. A
// scale of 1/rows gives the mean loss. lse, when not nil, holds each row's
// log Σ exp(z) (the softmax computed it), which a fused loss then reads.
func (l *loss) compute(z, y, lse []float64, b *Batch, width int, scale float64, wantGrad bool) (float64, []float64) {
	rows := b.Rows
	if wantGrad {
		l.grad = grow(l.grad, rows*width)
	}
	inv := scale
	var total float64
	for r := 0; r < rows; r++ {
		zr, yr := z[r*width:(r+1)*width], y[r*width:(r+1)*width]
		var g []float64
		if wantGrad {
			g = l.grad[r*width : (r+1)*width]
		}
		switch {
		case l.kind == SparseCategoricalCrossentropy:
			label := b.Labels[r]
			checkLabel(label, width)
			if l.fused {
				total += rowLSE(zr, lse, r) - zr[label]
				for j := range g {
					g[j] = yr[j] * inv
				}
				if g != nil {
					g[label] -= inv
				}
				continue
			}
			p := min(max(yr[label], probabilityEpsilon), 1-probabilityEpsilon)
			total -= math.Log(p)
			clear(g)
			if g != nil && p == yr[label] {
				g[label] = -inv / p
			}
		case l.kind == CategoricalCrossentropy && l.fused:
			rl := rowLSE(zr, lse, r)
			var mass float64
			for j := range zr {
				t := target(b, r, j, width)
				mass += t
				total += t * (rl - zr[j])
			}
			for j := range g {
				g[j] = (mass*yr[j] - target(b, r, j, width)) * inv
			}
		case l.kind == CategoricalCrossentropy:
			total += categoricalFromProbabilities(yr, g, b, r, width, inv)
		case l.kind == MeanSquaredError:
			var sq float64
			scale := 2 * inv / float64(width)
			for j, v := range yr {
				d := v - target(b, r, j, width)
				sq += d * d
				if g != nil {
					g[j] = scale * d
				}
			}
			total += sq / float64(width)
		}
	}
	if !wantGrad {
		return total * inv, nil
	}
	return total * inv, l.grad
}

// categoricalFromProbabilities is the categorical cross-entropy of one row
// of outputs y that are not a fused softmax, computed as Keras does: the
// outputs are normalised to sum to 1, then clipped to [ε, 1−ε]. It returns
// the row's loss and, when g is not nil, writes there the gradient of scale
// times the loss with respect to y (zero through clipped values).
func categoricalFromProbabilities(y, g []float64, b *Batch, r, width int, scale float64) float64 {
	var sum float64
	for _, v := range y {
		sum += v
	}
	var loss, dot float64 // dot = Σ_j dL/dq_j · q_j
	for j, v := range y {
		t := target(b, r, j, width)
		q := v / sum
		c := min(max(q, probabilityEpsilon), 1-probabilityEpsilon)
		loss -= t * math.Log(c)
		dq := 0.0
		if c == q {
			dq = -t / c
		}
		if g != nil {
			g[j] = dq
		}
		dot += dq * q
	}
	if g != nil {
		// q_j = y_j/S: dL/dy_k = (dL/dq_k − Σ_j dL/dq_j·q_j)/S.
		for j := range g {
			g[j] = scale * (g[j] - dot) / sum
		}
	}
	return loss
}

// rowLSE is row r's log Σ exp(z): lse[r] when given, computed otherwise.
func rowLSE(z, lse []float64, r int) float64 {
	if lse != nil {
		return lse[r]
	}
	return logSumExp(z)
}

// logSumExp is log Σ exp(z), computed without overflow.
func logSumExp(z []float64) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, v)
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, v := range z {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
