package nn

// AddPenaltiesValueForTest returns the penalties without touching gradients.
func (m *Model) AddPenaltiesValueForTest() float64 {
	return m.penalties()
}

// paramsOf is a float64 copy of m's parameters, whatever its dtype.
func paramsOf(m *Model) []float64 { return m.AppendParams(nil) }

// gradsOf is a float64 copy of m's gradients, whatever its dtype.
func gradsOf(m *Model) []float64 {
	if m.Dtype() == "float64" {
		return append([]float64(nil), m.Grads()...)
	}
	g := make([]float64, m.NumParams())
	widen(g, m.Grads32())
	return g
}

// kernels are float64 copies of m's prunable kernels.
func (m *Model) kernels() [][]float64 {
	p := paramsOf(m)
	var ks [][]float64
	for _, k := range m.kernelSpans() {
		ks = append(ks, p[k.off:k.off+k.n])
	}
	return ks
}
