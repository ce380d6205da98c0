package nn

import "math/rand/v2"

// Batch is a mini-batch of Rows samples. X holds Rows×InputSize values, one
// sample per row (row-major); when Sparse is not nil it holds the same rows
// in sparse form and X may be nil. Labels holds a class index per sample; Targets,
// when not nil, holds Rows×OutputSize target values for losses that compare
// outputs with dense targets, which otherwise take the one-hot encoding of
// Labels. IDs, when not nil, identifies each sample (its index in the data
// set) and drives the dropout masks, so that a sample is treated the same
// whichever worker and row it lands in; when nil the row index is used.
type Batch struct {
	X       []float64
	Sparse  *SparseRows
	Labels  []int
	Targets []float64
	IDs     []int
	Rows    int
}

// pass carries what a forward pass needs beyond its input.
type pass struct {
	train bool
	// seed and step key the dropout masks.
	seed, step uint64
	ids        []int
}

// sampleID returns the identity of row r.
func (p *pass) sampleID(r int) uint64 {
	if p.ids != nil {
		return uint64(p.ids[r])
	}
	return uint64(r)
}

// layer is one stage of a Sequential model. A layer keeps the buffers of its
// last forward pass for the backward pass that follows; slices it returns are
// owned by the layer and valid until its next call.
type layer interface {
	// outputSize is the number of values per sample the layer produces.
	outputSize() int
	// numParams is the number of trainable values.
	numParams() int
	// bind points the layer's parameters and gradients at its views of the
	// model's contiguous buffers, each numParams long.
	bind(params, grads []float64)
	// initialize draws the initial parameters into params, numParams
	// values laid out as bind's views, which it does not use: a float32
	// model's layer may have none.
	initialize(r *rand.Rand, params []float64)
	// forward maps rows samples of x to the layer's outputs.
	forward(x []float64, rows int, p *pass) []float64
	// backward takes dL/d(output) and writes the parameter gradients
	// (overwriting them); when needDX it returns dL/d(input).
	backward(dy []float64, rows int, needDX bool) []float64
	// regularized lists the ranges of the parameters that carry a
	// regulariser, which the model applies to its live buffers.
	regularized() []regSpan
}

// grow returns buf with room for n values, reallocating only when it is too
// short, so that buffers settle at the largest batch seen.
func grow(buf []float64, n int) []float64 {
	if cap(buf) < n {
		return make([]float64, n)
	}
	return buf[:n]
}

// mix64 is the SplitMix64 finaliser, a bijective hash with good avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
