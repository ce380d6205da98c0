package mnist

import (
	"math/rand/v2"
	"testing"
)

// TestGatherSparseMatchesGather: the sparse rows GatherSparse writes hold
// exactly the nonzero values of Gather's dense rows, in column order, for
// ids in any order and repeated, whether the index was built by
// IndexNonzero beforehand or by GatherSparse itself; images without ink
// give empty rows.
func TestGatherSparseMatchesGather(t *testing.T) {
	const count, rows, cols = 50, 4, 5
	r := rand.New(rand.NewPCG(3, 4))
	pixels := make([]byte, count*rows*cols)
	for i := range pixels {
		if r.IntN(3) == 0 {
			pixels[i] = byte(1 + r.IntN(255))
		}
	}
	clear(pixels[7*rows*cols : 8*rows*cols]) // an empty image
	labels := make([]byte, count)
	for i := range labels {
		labels[i] = byte(r.IntN(10))
	}
	ids := []int{7, 3, 3, 49, 0, 7, 12}
	for _, eager := range []bool{true, false} {
		s := newSet(count, rows, cols, pixels, labels)
		if eager {
			s.IndexNonzero()
		}
		f := s.Features()
		x, y := make([]float64, len(ids)*f), make([]int, len(ids))
		s.Gather(ids, x, y)
		rowEnd, sparseLabels := make([]int, len(ids)), make([]int, len(ids))
		col, val := s.GatherSparse(ids, rowEnd, nil, nil, sparseLabels)
		start := 0
		for row := range ids {
			var wantCol []int32
			var wantVal []float64
			for c, v := range x[row*f : (row+1)*f] {
				if v != 0 {
					wantCol, wantVal = append(wantCol, int32(c)), append(wantVal, v)
				}
			}
			gotCol, gotVal := col[start:rowEnd[row]], val[start:rowEnd[row]]
			if len(gotCol) != len(wantCol) || sparseLabels[row] != y[row] {
				t.Fatalf("eager %v, row %d (image %d): %d values, label %d; dense: %d values, label %d",
					eager, row, ids[row], len(gotCol), sparseLabels[row], len(wantCol), y[row])
			}
			for i := range wantCol {
				if gotCol[i] != wantCol[i] || gotVal[i] != wantVal[i] {
					t.Fatalf("eager %v, row %d value %d: (%d, %v), dense (%d, %v)", eager, row, i, gotCol[i], gotVal[i], wantCol[i], wantVal[i])
				}
			}
			start = rowEnd[row]
		}
		if rowEnd[0] != 0 {
			t.Fatalf("eager %v: the empty image has %d values", eager, rowEnd[0])
		}
	}
}
