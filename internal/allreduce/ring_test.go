package allreduce_test

import (
	"testing"

	"go.uber.org/goleak"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/allreduce/allreducetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemTransportConformance(t *testing.T) {
	allreducetest.Run(t, func(t *testing.T, n int) []allreduce.Transport { return allreduce.NewMemRing(n) })
}

// TestPartsSplitAnywhere feeds a segment's bytes in parts cut in the middle
// of elements, as a transport may deliver them.
func TestPartsSplitAnywhere(t *testing.T) {
	want := []float64{1.5, -2, 3e300, 0.25, 7}
	b := append([]byte(nil), allreduce.EncodeForTest(want)...)
	for _, cuts := range [][]int{{3}, {8, 9, 10}, {1, 2, 3, 4, 5, 6, 7}, {20, 39}} {
		var parts [][]byte
		prev := 0
		for _, c := range cuts {
			parts = append(parts, b[prev:c])
			prev = c
		}
		parts = append(parts, b[prev:])
		got := make([]float64, len(want))
		allreduce.SetPartsForTest(got, parts)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("cuts %v: element %d is %v, want %v", cuts, i, got[i], want[i])
			}
		}
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	v := []float64{1.5, -2, 3e300, 0}
	b := append([]byte(nil), allreduce.EncodeForTest(v)...)
	// A misaligned copy takes the slow path.
	odd := append([]byte{0}, b...)[1:]
	for _, buf := range [][]byte{b, odd} {
		got := make([]float64, len(v))
		allreduce.DecodeForTest(got, buf)
		for i := range v {
			if got[i] != v[i] {
				t.Fatalf("value %d: %v, want %v", i, got[i], v[i])
			}
		}
	}
}
