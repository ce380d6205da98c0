package nn

import (
	"fmt"
	"math"

	"ringtrain/internal/gemm"
)

// Activation is an element-wise (or, for softmax, row-wise) function applied
// to a layer's pre-activations z to give its outputs y.
type Activation int

// The activations. Step is the Heaviside function, 1 for z > 0 and 0
// otherwise; its derivative is zero wherever it exists, so no gradient flows
// through it: it is for inference and perceptron demonstrations, not for
// layers trained by back-propagation.
const (
	Linear Activation = iota
	ReLU
	Sigmoid
	Tanh
	Softmax
	Step
)

var activationNames = [...]string{"linear", "relu", "sigmoid", "tanh", "softmax", "step"}

func (a Activation) String() string { return activationNames[a] }

func parseActivation(name string) (Activation, error) {
	if name == "" {
		return Linear, nil
	}
	for i, n := range activationNames {
		if n == name {
			return Activation(i), nil
		}
	}
	return 0, fmt.Errorf("unknown activation %q (want linear, relu, sigmoid, tanh, softmax or step)", name)
}

// apply writes a(z) into y for rows×width values; y may alias z.
func (a Activation) apply(z, y []float64, rows, width int) {
	n := rows * width
	z, y = z[:n], y[:n]
	switch a {
	case Linear:
		copy(y, z)
	case ReLU:
		for i, v := range z {
			y[i] = max(v, 0)
		}
	case Sigmoid:
		for i, v := range z {
			y[i] = sigmoid(v)
		}
	case Tanh:
		for i, v := range z {
			y[i] = math.Tanh(v)
		}
	case Step:
		for i, v := range z {
			if v > 0 {
				y[i] = 1
			} else {
				y[i] = 0
			}
		}
	case Softmax:
		softmaxRows(z, y, nil, rows, width)
	}
}

// softmaxRows writes the softmax of every row of z into y and, when lse is
// not nil, each row's log Σ exp(z) into lse (bit-identical to logSumExp's:
// a loss after a softmax output reads it instead of computing the
// exponentials again).
func softmaxRows(z, y, lse []float64, rows, width int) {
	for r := 0; r < rows; r++ {
		l := softmaxRow(z[r*width:(r+1)*width], y[r*width:(r+1)*width])
		if lse != nil {
			lse[r] = l
		}
	}
}

// applyFast is apply with package gemm's vectorised sigmoid and tanh,
// within 1e-14 of math's but not bit-identical to them: for the float32
// paths, whose products round far more.
func (a Activation) applyFast(z, y []float64, rows, width int) {
	n := rows * width
	switch a {
	case Sigmoid:
		gemm.Sigmoid(y[:n], z[:n])
	case Tanh:
		gemm.Tanh(y[:n], z[:n])
	default:
		a.apply(z, y, rows, width)
	}
}

// sigmoid is 1/(1+e^−v), computed without overflow for either sign.
func sigmoid(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}

// softmaxRow writes the softmax of z into y, subtracting the maximum first so
// that no exponential overflows, and returns log Σ exp(z), computed as
// logSumExp computes it.
func softmaxRow(z, y []float64) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, v)
	}
	var sum float64
	for i, v := range z {
		e := math.Exp(v - m)
		y[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range y {
		y[i] *= inv
	}
	if math.IsInf(m, 0) {
		return m
	}
	return m + math.Log(sum)
}

// backward turns dL/dy into dL/dz, given the outputs y; dz may alias dy.
func (a Activation) backward(y, dy, dz []float64, rows, width int) {
	n := rows * width
	y, dy, dz = y[:n], dy[:n], dz[:n]
	switch a {
	case Linear:
		copy(dz, dy)
	case ReLU:
		for i, v := range y {
			if v > 0 {
				dz[i] = dy[i]
			} else {
				dz[i] = 0
			}
		}
	case Sigmoid:
		for i, v := range y {
			dz[i] = dy[i] * v * (1 - v)
		}
	case Tanh:
		for i, v := range y {
			dz[i] = dy[i] * (1 - v*v)
		}
	case Step:
		clear(dz)
	case Softmax:
		// dz_i = y_i (dy_i − Σ_j dy_j y_j), the Jacobian-vector product.
		for r := 0; r < rows; r++ {
			yr, dyr, dzr := y[r*width:(r+1)*width], dy[r*width:(r+1)*width], dz[r*width:(r+1)*width]
			var dot float64
			for j, v := range yr {
				dot += dyr[j] * v
			}
			for j, v := range yr {
				dzr[j] = v * (dyr[j] - dot)
			}
		}
	}
}
