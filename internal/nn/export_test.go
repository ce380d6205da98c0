package nn

// AddPenaltiesValueForTest returns the penalties without touching gradients.
func (m *Model) AddPenaltiesValueForTest() float64 {
	var p float64
	for _, l := range m.layers {
		p += l.penalty()
	}
	return p
}
