package allreduce

// EncodeForTest and DecodeForTest expose the wire encoding to the external
// tests.
func EncodeForTest(v []float64) []byte    { return encode(nil, v) }
func DecodeForTest(v []float64, b []byte) { decode(v, b) }

// SetPartsForTest decodes parts into v as a received frame would be.
func SetPartsForTest(v []float64, parts [][]byte) {
	(&floatVector{v: v}).set(0, len(v), parts)
}
