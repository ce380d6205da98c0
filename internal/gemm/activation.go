package gemm

import "math"

// expTable holds the constants of the assembly exp, four copies of each
// (one per lane) in this order: log2(e); the shifter 1.5·2^52 + 1023 that
// rounds to an integer and leaves k + 1023 in the low bits; ln 2 in two
// parts; 1/11! down to 1/2!; 1; the clamps ±708; −2; tanh's Taylor
// coefficients −17/315, 2/15, −1/3; the threshold under which tanh uses
// them; the absolute-value and sign masks.
type expTable [24][4]float64

var expConsts = func() *expTable {
	var t expTable
	vals := []float64{math.Log2E, 0x1.8p52 + 1023, 6.93147180369123816490e-01, 1.90821492927058770002e-10}
	f := 1.0
	var inv [12]float64
	for i := 1; i <= 11; i++ {
		f *= float64(i)
		inv[i] = 1 / f
	}
	for i := 11; i >= 2; i-- {
		vals = append(vals, inv[i])
	}
	vals = append(vals, 1, 708, -708, -2, -17.0/315, 2.0/15, -1.0/3, 0.01,
		math.Float64frombits(1<<63-1), math.Float64frombits(1<<63))
	for i, v := range vals {
		t[i] = [4]float64{v, v, v, v}
	}
	return &t
}()

// Sigmoid sets dst[i] = 1/(1+e^−src[i]) for every i < len(src), four
// values at a time where the machine allows, to within about 1e-14 of the
// exact value (not bit-identical to math.Exp's); NaN stays NaN.
func Sigmoid(dst, src []float64) {
	n := len(src)
	dst = dst[:n]
	done := 0
	if useAsm && n >= 4 {
		done = n &^ 3
		sigmoid4(&dst[0], &src[0], done, expConsts)
	}
	for i := done; i < n; i++ {
		dst[i] = sigmoidGo(src[i])
	}
}

// Tanh sets dst[i] = tanh(src[i]) for every i < len(src), as Sigmoid does.
func Tanh(dst, src []float64) {
	n := len(src)
	dst = dst[:n]
	done := 0
	if useAsm && n >= 4 {
		done = n &^ 3
		tanh4(&dst[0], &src[0], done, expConsts)
	}
	for i := done; i < n; i++ {
		dst[i] = math.Tanh(src[i])
	}
}

func sigmoidGo(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}
