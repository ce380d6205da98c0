package nn

import "math"

// float is the element type of a model's parameters, gradients and
// optimiser state: float32 (the default dtype) or float64.
type float interface{ ~float32 | ~float64 }

// span is the range [off, off+n) of a layer's parameters.
type span struct{ off, n int }

// regSpan is a range of a layer's parameters under one regulariser.
type regSpan struct {
	span
	r *Regularizer
}

// widen sets dst[i] = float64(src[i]) for every i < len(src).
func widen(dst []float64, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// narrow sets dst[i] = float32(src[i]) for every i < len(src).
func narrow(dst []float32, src []float64) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = float32(v)
	}
}

// sqrt is math.Sqrt in T: for float32 the correctly rounded square root.
func sqrt[T float](v T) T { return T(math.Sqrt(float64(v))) }

// regSpans returns the spans of s that are not empty and have a
// regulariser.
func regSpans(s ...regSpan) []regSpan {
	out := s[:0]
	for _, r := range s {
		if r.r != nil && r.n > 0 {
			out = append(out, r)
		}
	}
	return out
}
