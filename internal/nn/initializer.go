package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Initializer fills a new layer's weights. Each follows Keras's definition;
// fanIn and fanOut are the input and output widths of the layer.
type Initializer int

// The initialisers.
const (
	// GlorotUniform draws from U(−l, l) with l = √(6/(fanIn+fanOut)); Keras's
	// default for dense kernels.
	GlorotUniform Initializer = iota
	// GlorotNormal draws from a normal with σ = √(2/(fanIn+fanOut)),
	// truncated at 2σ.
	GlorotNormal
	// HeNormal draws from a normal with σ = √(2/fanIn), truncated at 2σ.
	HeNormal
	// HeUniform draws from U(−l, l) with l = √(6/fanIn).
	HeUniform
	// Zeros sets every value to 0; Keras's default for biases.
	Zeros
	// Orthogonal draws a matrix with orthonormal rows or columns (the Q of
	// the QR decomposition of a normal matrix, signs fixed by R's
	// diagonal); Keras's default for recurrent kernels.
	Orthogonal
)

var initializerNames = [...]string{"glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "zeros", "orthogonal"}

func (i Initializer) String() string { return initializerNames[i] }

func parseInitializer(name string) (Initializer, error) {
	for i, n := range initializerNames {
		if n == name {
			return Initializer(i), nil
		}
	}
	return 0, fmt.Errorf("unknown initializer %q (want glorot_uniform, glorot_normal, he_normal, he_uniform, zeros or orthogonal)", name)
}

// fill writes initial values into w, a rows×cols row-major matrix of a
// layer whose fan-in and fan-out (as Keras counts them) are fanIn and
// fanOut.
func (i Initializer) fill(w []float64, rows, cols, fanIn, fanOut int, r *rand.Rand) {
	switch i {
	case Zeros:
		clear(w)
	case Orthogonal:
		orthogonal(w, rows, cols, r)
	case GlorotUniform:
		uniform(w, math.Sqrt(6/float64(fanIn+fanOut)), r)
	case HeUniform:
		uniform(w, math.Sqrt(6/float64(fanIn)), r)
	case GlorotNormal:
		truncatedNormal(w, math.Sqrt(2/float64(fanIn+fanOut)), r)
	case HeNormal:
		truncatedNormal(w, math.Sqrt(2/float64(fanIn)), r)
	}
}

func uniform(w []float64, limit float64, r *rand.Rand) {
	for i := range w {
		w[i] = (2*r.Float64() - 1) * limit
	}
}

// truncatedNormal draws from a normal truncated at ±2 standard deviations,
// with the scale corrected as Keras's VarianceScaling does so that the
// truncated distribution has standard deviation sigma.
func truncatedNormal(w []float64, sigma float64, r *rand.Rand) {
	const truncationCorrection = 0.87962566103423978 // σ of N(0,1) truncated to [−2, 2]
	s := sigma / truncationCorrection
	for i := range w {
		v := r.NormFloat64()
		for math.Abs(v) > 2 {
			v = r.NormFloat64()
		}
		w[i] = v * s
	}
}

func orthogonal(w []float64, rows, cols int, r *rand.Rand) {
	n, k := max(rows, cols), min(rows, cols)
	a := mat.NewDense(n, k, nil)
	for i := range n {
		for j := range k {
			a.Set(i, j, r.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var q, rr mat.Dense
	qr.QTo(&q)
	qr.RTo(&rr)
	for j := range k {
		sign := 1.0
		if rr.At(j, j) < 0 {
			sign = -1
		}
		for i := range n {
			v := sign * q.At(i, j)
			if rows >= cols {
				w[i*cols+j] = v
			} else {
				w[j*cols+i] = v
			}
		}
	}
}
