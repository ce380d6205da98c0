package allreduce

// EncodeForTest and DecodeForTest expose the wire encoding to the external
// tests.
func EncodeForTest(v []float64) []byte    { return encode(nil, v) }
func DecodeForTest(v []float64, b []byte) { decode(v, b) }
