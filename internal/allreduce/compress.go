package allreduce

import (
	"context"
	"fmt"
)

// Compression says how AllReduce16 sends its values.
type Compression struct {
	// Kind is the 16-bit format on the wire: Float16 (IEEE binary16: 10
	// mantissa bits, largest finite value 65504) or BFloat16 (7 mantissa
	// bits, float32's range).
	Kind Kind
	// Exact is how many values at the start of the vector travel as
	// float32, uncompressed: values that are read rather than applied (a
	// loss, counters, flags). Every rank must pass the same Exact; the
	// frames carry the kind and the length in elements, not this split.
	Exact int
	// Residual, when not nil, is error feedback for the compressed
	// values, one per value (len(v) − Exact): it is added to them before
	// the collective, then holds what rounding took from this
	// collective's sum on this rank (its sends and the chunk it completes),
	// to be given back by the next one. Start it at zeros; after a failed
	// collective its contents, like v's, are unspecified.
	Residual []float32
}

// AllReduce16 is AllReduceFloat32 with the values v[c.Exact:] travelling
// in 16 bits, half of float32's bytes: partial sums are computed in float32
// and rounded to 16 bits, to nearest even, only to be sent, once per hop;
// the rank that completes a chunk rounds it (after averaging), so that
// every rank ends with the same bits, each a 16-bit value. Values beyond
// float16's range become ±Inf, as a cast would. On a ring of one nothing
// travels: v is left as it is, and so is c.Residual.
func (r *Ring) AllReduce16(ctx context.Context, step uint64, v []float32, op Op, c Compression) error {
	if c.Kind != Float16 && c.Kind != BFloat16 {
		return fmt.Errorf("allreduce: %v is not a 16-bit kind", c.Kind)
	}
	if c.Exact < 0 || c.Exact > len(v) {
		return fmt.Errorf("allreduce: %d exact values in a vector of %d", c.Exact, len(v))
	}
	if c.Residual != nil && len(c.Residual) != len(v)-c.Exact {
		return fmt.Errorf("allreduce: residual of %d values for %d compressed ones", len(c.Residual), len(v)-c.Exact)
	}
	if r.t.Size() == 1 {
		return ctx.Err()
	}
	for i, e := range c.Residual {
		v[c.Exact+i] += e
	}
	clear(c.Residual)
	return r.run(ctx, step, &half16Vector{k: c.Kind, v: v, exact: c.Exact, xElems: (c.Exact + 1) / 2,
		lost: c.Residual, average: op == Average, n: r.t.Size()})
}
