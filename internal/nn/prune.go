package nn

import (
	"fmt"
	"math"
	"slices"
)

// PruningSpec prunes the model's kernels by magnitude while it trains: at
// every pruning step the smallest weights of each kernel (dense, conv2d,
// and a recurrent layer's kernel and recurrent kernel; never biases) are
// set to zero until the kernel has the step's target sparsity, and from
// BeginStep on a kernel weight that is zero stays zero (the optimiser's
// updates to it are undone).
//
// The target grows from 0 to Sparsity along Zhu and Gupta's cubic schedule
// (2017), s_t = Sparsity·(1 − (1 − (t−BeginStep)/(EndStep−BeginStep))³),
// pruning every Frequency steps from BeginStep to EndStep; with EndStep at
// or before BeginStep, the model is pruned once, at BeginStep. Steps count
// the updates applied (the optimiser's iterations), the same on every
// replica of a distributed job.
type PruningSpec struct {
	Sparsity  float64 `json:"sparsity"`
	BeginStep int     `json:"begin_step,omitempty"`
	EndStep   int     `json:"end_step,omitempty"`
	// Frequency defaults to 100.
	Frequency int `json:"frequency,omitempty"`
}

func (p *PruningSpec) validate() error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("nn: model description: pruning.%s: %s", field, fmt.Sprintf(format, args...))
	}
	switch {
	case !(p.Sparsity > 0 && p.Sparsity < 1):
		return fail("sparsity", "must be in (0, 1), got %v", p.Sparsity)
	case p.BeginStep < 0 || p.EndStep < 0:
		return fail("begin_step", "steps cannot be negative")
	case p.Frequency < 0:
		return fail("frequency", "cannot be negative")
	}
	return nil
}

// target is the sparsity to prune to after update t, and whether t is a
// pruning step.
func (p *PruningSpec) target(t uint64) (float64, bool) {
	begin, end := uint64(p.BeginStep), uint64(p.EndStep)
	if t < begin {
		return 0, false
	}
	if end <= begin {
		return p.Sparsity, t == begin
	}
	freq := uint64(p.Frequency)
	if freq == 0 {
		freq = 100
	}
	if t > end || ((t-begin)%freq != 0 && t != end) {
		return 0, false
	}
	frac := float64(t-begin) / float64(end-begin)
	return p.Sparsity * (1 - math.Pow(1-frac, 3)), true
}

// prunable is a layer with kernels to prune.
type prunable interface {
	kernels() [][]float64
}

func (d *dense) kernels() [][]float64     { return [][]float64{d.w} }
func (l *conv2d) kernels() [][]float64    { return [][]float64{l.k} }
func (l *recurrent) kernels() [][]float64 { return [][]float64{l.w, l.u} }

// kernels lists every prunable kernel of the model.
func (m *Model) kernels() [][]float64 {
	var ks [][]float64
	for _, l := range m.layers {
		if p, ok := l.(prunable); ok {
			ks = append(ks, p.kernels()...)
		}
	}
	return ks
}

// Prune sets the smallest-magnitude weights of every kernel to zero, so
// that each kernel has the given sparsity (the fraction of its weights that
// are zero, counting those that already were). It panics unless sparsity is
// in [0, 1].
func (m *Model) Prune(sparsity float64) {
	if !(sparsity >= 0 && sparsity <= 1) {
		panic(fmt.Sprintf("nn: sparsity %v outside [0, 1]", sparsity))
	}
	for _, k := range m.kernels() {
		pruneKernel(k, sparsity, &m.pruneOrder)
	}
}

// pruneKernel zeroes the ⌊sparsity·len(w)⌋ weights of smallest magnitude
// (ties broken by position, so that every replica agrees).
func pruneKernel(w []float64, sparsity float64, order *[]int32) {
	n := int(sparsity * float64(len(w)))
	if n == 0 {
		return
	}
	idx := (*order)[:0]
	for i := range w {
		idx = append(idx, int32(i))
	}
	slices.SortFunc(idx, func(a, b int32) int {
		if c := cmpAbs(w[a], w[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	for _, i := range idx[:n] {
		w[i] = 0
	}
	*order = idx
}

func cmpAbs(a, b float64) int {
	a, b = math.Abs(a), math.Abs(b)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Sparsity is the fraction of the model's kernel weights that are zero.
func (m *Model) Sparsity() float64 {
	var zeros, total int
	for _, k := range m.kernels() {
		for _, v := range k {
			if v == 0 {
				zeros++
			}
		}
		total += len(k)
	}
	if total == 0 {
		return 0
	}
	return float64(zeros) / float64(total)
}

// keepZeros records the kernel weights that are zero, for restoreZeros to
// reset after an update.
func (m *Model) keepZeros() {
	m.zeros = m.zeros[:0]
	off := 0
	for _, k := range m.kernels() {
		for i, v := range k {
			if v == 0 {
				m.zeros = append(m.zeros, zeroAt{kernel: int32(off), index: int32(i)})
			}
		}
		off++
	}
}

// restoreZeros sets the weights keepZeros recorded back to zero.
func (m *Model) restoreZeros() {
	ks := m.kernels()
	for _, z := range m.zeros {
		ks[z.kernel][z.index] = 0
	}
}

// zeroAt is a kernel weight held at zero.
type zeroAt struct{ kernel, index int32 }
