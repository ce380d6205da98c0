package nn

import "gonum.org/v1/gonum/floats"

// SparseRows is a batch of input rows in compressed sparse row form: row r's
// nonzero values are Val[RowEnd[r-1]:RowEnd[r]] (from 0 for the first row),
// at the columns Col of the same range, in increasing column order.
//
// MNIST images are four-fifths zeros. A first dense layer fed sparse rows
// does work only for the nonzero pixels, in the same order as the dense
// product would add them, so the result is bit-identical to the dense path
// (TestSparseInputMatchesDense) at a fraction of the cost
// (BenchmarkTrainStep).
type SparseRows struct {
	RowEnd []int
	Col    []int32
	Val    []float64
}

// row returns the columns and values of row r.
func (s *SparseRows) row(r int) ([]int32, []float64) {
	start := 0
	if r > 0 {
		start = s.RowEnd[r-1]
	}
	return s.Col[start:s.RowEnd[r]], s.Val[start:s.RowEnd[r]]
}

// densify writes the first rows rows of s into x, width values per row.
func (s *SparseRows) densify(x []float64, rows, width int) {
	clear(x[:rows*width])
	for r := 0; r < rows; r++ {
		cols, vals := s.row(r)
		xr := x[r*width : (r+1)*width]
		for i, c := range cols {
			xr[c] = vals[i]
		}
	}
}

// SparseDataset is a Dataset that can also gather samples as sparse rows.
type SparseDataset interface {
	Dataset
	// GatherSparse writes into rowEnd (one entry per id) the end of each
	// sample's nonzero values, appends their columns and values to col[:0]
	// and val[:0], writes the labels and returns the extended col and val.
	GatherSparse(ids []int, rowEnd []int, col []int32, val []float64, labels []int) ([]int32, []float64)
}

// Gather fills b with the samples ids of d (rows, labels, and the inputs as
// sparse rows when d supports them). It leaves b.IDs alone.
func Gather(d Dataset, ids []int, b *Batch) {
	b.Rows = len(ids)
	if sd, ok := d.(SparseDataset); ok {
		if b.Sparse == nil {
			b.Sparse = &SparseRows{}
		}
		s := b.Sparse
		s.RowEnd = growInts(s.RowEnd, len(ids))
		s.Col, s.Val = sd.GatherSparse(ids, s.RowEnd, s.Col, s.Val, b.Labels)
		return
	}
	b.X = grow(b.X, len(ids)*d.Features())
	d.Gather(ids, b.X, b.Labels)
}

func growInts(buf []int, n int) []int {
	if cap(buf) < n {
		return make([]int, n)
	}
	return buf[:n]
}

// forwardSparse is forward for sparse input rows: z = b + Σ x_k·W[k,:]
// over the nonzero x_k.
func (d *dense) forwardSparse(x *SparseRows, rows int) []float64 {
	d.x, d.xs = nil, x
	switch {
	case d.narrow:
		return d.forwardSparseNarrow32(x, rows)
	case d.single:
		return d.forwardSparse32(x, rows)
	}
	d.z = grow(d.z, rows*d.out)
	for r := 0; r < rows; r++ {
		zr := d.z[r*d.out : (r+1)*d.out]
		if d.useBias {
			copy(zr, d.b)
		} else {
			clear(zr)
		}
		cols, vals := x.row(r)
		for i, c := range cols {
			floats.AddScaled(zr, vals[i], d.w[int(c)*d.out:(int(c)+1)*d.out])
		}
	}
	return d.activate(rows)
}

// kernelGradientSparse is dW = xᵀ·dz for sparse input rows.
func (d *dense) kernelGradientSparse(dz []float64, rows int) {
	clear(d.dw)
	for r := 0; r < rows; r++ {
		dzr := dz[r*d.out : (r+1)*d.out]
		cols, vals := d.xs.row(r)
		for i, c := range cols {
			floats.AddScaled(d.dw[int(c)*d.out:(int(c)+1)*d.out], vals[i], dzr)
		}
	}
}
