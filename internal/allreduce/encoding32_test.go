package allreduce

import (
	"encoding/binary"
	"math"
	"testing"
)

// TestFloat32DecodingAnyAlignment adds and copies float32 values from
// byte buffers at every alignment mod 4 (viewed, or converted one by one)
// and of lengths around the vector instructions' width, into vectors
// shorter than, as long as and longer than the buffer, and checks every
// value against a plain float32 addition or copy.
func TestFloat32DecodingAnyAlignment(t *testing.T) {
	for values := 0; values <= 40; values++ {
		for off := range 4 {
			raw := make([]byte, off+4*values)
			b := raw[off:]
			for i := range values {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i)*0.37+1e-3))
			}
			for _, vlen := range []int{max(values-3, 0), values, values + 5} {
				v := make([]float32, vlen)
				for i := range v {
					v[i] = float32(i) * 1.1
				}
				sum, set := append([]float32(nil), v...), append([]float32(nil), v...)
				addDecoded32(sum, b)
				decode32(set, b)
				for i := range v {
					wantSum, wantSet := v[i], v[i]
					if i < values {
						x := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
						wantSum, wantSet = v[i]+x, x
					}
					if math.Float32bits(sum[i]) != math.Float32bits(wantSum) || math.Float32bits(set[i]) != math.Float32bits(wantSet) {
						t.Fatalf("%d values at offset %d into %d: value %d added %v, set %v; want %v, %v", values, off, vlen, i, sum[i], set[i], wantSum, wantSet)
					}
				}
			}
		}
	}
}
