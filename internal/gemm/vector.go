package gemm

// Add sets dst[i] += src[i] for every i < len(src); dst must be at least as
// long.
func Add(dst, src []float32) {
	dst = dst[:len(src)]
	n := 0
	if useAsm && len(src) >= 8 {
		n = len(src) &^ 7
		add8(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] += src[i]
	}
}

// FromFloat64 sets dst[i] = float32(src[i]) for every i < len(src).
func FromFloat64(dst []float32, src []float64) {
	dst = dst[:len(src)]
	n := 0
	if useAsm && len(src) >= 4 {
		n = len(src) &^ 3
		narrow4(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] = float32(src[i])
	}
}

// ToFloat64 sets dst[i] = float64(src[i]) for every i < len(src).
func ToFloat64(dst []float64, src []float32) {
	dst = dst[:len(src)]
	n := 0
	if useAsm && len(src) >= 4 {
		n = len(src) &^ 3
		widen4(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] = float64(src[i])
	}
}
