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
