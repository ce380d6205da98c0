package worker

import (
	"context"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/gemm"
)

// allReduce sums the ordinary mode's vector (the gradient, the loss and
// the control elements) over the ring as collective c: in float32 on the
// wire, half the bytes, for a float32 model, as every framework reduces
// its gradients; in float64 for a float64 one, whose exactness it keeps.
func (s *stepper) allReduce(ctx context.Context, c uint64) error {
	if s.ring.Transport().Size() == 1 || s.model.Spec().DtypeOrDefault() == "float64" {
		// Alone, nothing travels: no conversion, no rounding.
		return s.ring.AllReduce(ctx, c, s.reduced, allreduce.Sum)
	}
	if len(s.wire32) != len(s.reduced) {
		s.wire32 = make([]float32, len(s.reduced))
	}
	// A finite value beyond float32's range becomes infinite here, and the
	// non-finite policy applies to it on every replica alike.
	gemm.FromFloat64(s.wire32, s.reduced)
	if err := s.ring.AllReduceFloat32(ctx, c, s.wire32, allreduce.Sum); err != nil {
		return err
	}
	gemm.ToFloat64(s.reduced, s.wire32)
	return nil
}
