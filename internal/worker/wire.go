package worker

import (
	"context"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/gemm"
)

// allReduce sums the values [lo, hi) of the ordinary mode's vector (the
// loss, the control elements and the gradient) over the ring as collective
// c: in float32 on the wire, half the bytes, for a float32 model, as every
// framework reduces its gradients; in float64 for a float64 one, whose
// exactness it keeps; in 16 bits when the job compresses (compress.go).
func (s *stepper) allReduce(ctx context.Context, c uint64, lo, hi int) error {
	if s.wireBytes() == 2 {
		return s.allReduce16(ctx, c, lo, hi)
	}
	v := s.reduced[lo:hi]
	if s.wireBytes() == 8 {
		return s.ring.AllReduce(ctx, c, v, allreduce.Sum)
	}
	if len(s.wire32) != len(s.reduced) {
		s.wire32 = make([]float32, len(s.reduced))
	}
	w := s.wire32[lo:hi]
	// A finite value beyond float32's range becomes infinite here, and the
	// non-finite policy applies to it on every replica alike.
	gemm.FromFloat64(w, v)
	if err := s.ring.AllReduceFloat32(ctx, c, w, allreduce.Sum); err != nil {
		return err
	}
	gemm.ToFloat64(v, w)
	return nil
}

// wireBytes is the size on the wire of a value of the ordinary mode's
// vector: 8 for a float64 model, or alone (nothing travels: no conversion,
// no rounding), 2 compressed, 4 otherwise.
func (s *stepper) wireBytes() int {
	if s.comp != nil && s.ring.Transport().Size() > 1 {
		return 2
	}
	if s.ring.Transport().Size() == 1 || s.model.Spec().DtypeOrDefault() == "float64" {
		return 8
	}
	return 4
}
