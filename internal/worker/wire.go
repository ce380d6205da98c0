package worker

import (
	"context"

	"ringtrain/internal/allreduce"
)

// allReduce sums the values [lo, hi) of the ordinary mode's vector (the
// loss, the control elements and the gradient) over the ring as collective
// c, in place and in the model's dtype: in float32 for a float32 model, as
// every framework reduces its gradients; in float64 for a float64 one,
// whose exactness it keeps; in 16 bits when the job compresses
// (compress.go).
func (s *stepper) allReduce(ctx context.Context, c uint64, lo, hi int) error {
	if s.wireBytes() == 2 {
		return s.allReduce16(ctx, c, lo, hi)
	}
	if s.reduced32 != nil {
		return s.ring.AllReduceFloat32(ctx, c, s.reduced32[lo:hi], allreduce.Sum)
	}
	return s.ring.AllReduce(ctx, c, s.reduced[lo:hi], allreduce.Sum)
}

// wireBytes is the size on the wire of a value of the ordinary mode's
// vector: 2 compressed (with another worker), otherwise the model's
// dtype's, 8 for float64 and 4 for float32.
func (s *stepper) wireBytes() int {
	if s.comp != nil && s.ring.Transport().Size() > 1 {
		return 2
	}
	if s.reduced32 == nil {
		return 8
	}
	return 4
}
