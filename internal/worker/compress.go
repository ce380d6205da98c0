package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/gemm"
)

// Gradient compression on the wire (JobSpec.compression), Horovod's
// Compression.fp16 with error feedback.
//
// With "fp16" or "bf16" the ordinary mode's gradient travels in 16-bit
// floats, half of float32's bytes; the loss and the control counts travel
// exactly, as float32 (see allreduce.AllReduce16: partial sums in
// float32, rounded once per hop). Every replica applies the same rounded
// average, so the replicas stay identical; what rounding took from the
// sums on this worker (its own sends, the chunks it completes) is its
// residual, added to its share of the next step's gradient, as in 1-bit
// SGD (Seide et al., 2014), EF-SGD (Karimireddy et al., 2019) and, for
// compression at both ends, DoubleSqueeze (Tang et al., 2019): what
// compression takes is delayed, not lost.
//
// The residual belongs to the ring: it is not checkpointed, and a new ring
// (a worker joining or leaving, a failure, a resume) starts it at zeros,
// dropping at most one rounding per value of one step. A step skipped for
// a non-finite gradient consumes the residual it was given and keeps none
// of its own: no replica applied its sum.

// compression is a job's gradient compression and its error feedback.
type compression struct {
	kind allreduce.Kind
	// residual holds, for every parameter, what compression took from the
	// sums on this worker and the next step gives back.
	residual []float32
}

// parseCompression returns the wire kind of a JobSpec's compression, or
// ok false for none.
func parseCompression(name string) (kind allreduce.Kind, ok bool, err error) {
	switch name {
	case "":
		return 0, false, nil
	case "fp16":
		return allreduce.Float16, true, nil
	case "bf16":
		return allreduce.BFloat16, true, nil
	}
	return 0, false, fmt.Errorf("gradient compression %q: this worker knows fp16 and bf16", name)
}

// compress switches the stepper's ordinary mode to the job's gradient
// compression, name as in JobSpec.compression ("" leaves it off).
func (s *stepper) compress(name string) error {
	kind, ok, err := parseCompression(name)
	if err != nil || !ok {
		return err
	}
	if s.det != nil {
		return errors.New("gradient compression cannot be combined with the deterministic mode, whose sums are exact")
	}
	s.comp = &compression{kind: kind, residual: make([]float32, s.model.NumParams())}
	return nil
}

// allReduce16 is allReduce compressed: the values [lo, hi) of the
// ordinary mode's vector travel in 16 bits, those of its head (the loss
// and the control counts) in float32, and the gradient's residual is
// given back and renewed.
func (s *stepper) allReduce16(ctx context.Context, c uint64, lo, hi int) error {
	exact := max(0, min(hi, ordinaryHead)-lo)
	res := s.comp.residual[lo+exact-ordinaryHead : hi-ordinaryHead]
	cmp := allreduce.Compression{Kind: s.comp.kind, Exact: exact, Residual: res}
	if s.reduced32 != nil {
		return s.ring.AllReduce16(ctx, c, s.reduced32[lo:hi], allreduce.Sum, cmp)
	}
	if len(s.wire32) != len(s.reduced) {
		s.wire32 = make([]float32, len(s.reduced))
	}
	v, w := s.reduced[lo:hi], s.wire32[lo:hi]
	gemm.FromFloat64(w, v)
	if err := s.ring.AllReduce16(ctx, c, w, allreduce.Sum, cmp); err != nil {
		return err
	}
	gemm.ToFloat64(v, w)
	return nil
}

// sumCause says why the ordinary mode's last sum is not finite when every
// worker's gradient was (the count of those that were not, reduced with
// it, is zero): it overflowed the wire format's range, or, holding a NaN,
// which adding finite values never makes, a peer sent values it did not
// compute. It returns "" otherwise, and in the deterministic mode, whose
// range is its own.
func (s *stepper) sumCause() string {
	if s.det != nil || s.head(2) != 0 || s.vecFinite() {
		return ""
	}
	hasNaN := slices.ContainsFunc(s.reduced, func(x float64) bool { return x != x }) ||
		slices.ContainsFunc(s.reduced32, func(x float32) bool { return x != x })
	if hasNaN {
		cause := "the sum holds a NaN, which adding finite values never makes: a peer sent values it did not compute (a corrupted or forged frame)"
		if s.wireBytes() < 8 {
			// Gradients finite in float64 are ±Inf in float32.
			cause += ", or gradients of opposite signs beyond float32's range met"
		}
		return cause
	}
	switch {
	case s.comp != nil && s.comp.kind == allreduce.Float16:
		return "the sum overflowed float16's range (65504) on the wire: -compression bf16 keeps float32's range"
	case s.comp != nil:
		return "the sum overflowed bfloat16's range, float32's, on the wire"
	case s.wireBytes() == 4:
		return "the sum overflowed float32's range on the wire"
	}
	return "the sum overflowed float64's range"
}

// reducedBytes is the size on the wire of the vectors a step reduces
// once (a deterministic step redone at a coarser resolution reduces
// again): int64 sums in the deterministic mode; otherwise the loss and
// control counts (float32 when compressed) and the gradient, at the
// ordinary mode's wire size.
func (s *stepper) reducedBytes() int {
	switch {
	case s.det != nil:
		return 8 * len(s.det.acc.Sum)
	case s.wireBytes() == 2:
		return 4*ordinaryHead + 2*(s.vecLen()-ordinaryHead)
	}
	return s.wireBytes() * s.vecLen()
}
