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
	// kernels lists the kernels' ranges in the layer's parameters.
	kernels() []span
}

func (d *dense) kernels() []span  { return []span{{0, d.in * d.out}} }
func (l *conv2d) kernels() []span { return []span{{0, l.patch() * l.filters}} }
func (l *recurrent) kernels() []span {
	// From the shape, not from l.w and l.u: a float32 model's recurrent
	// layer has no float64 views.
	nw, nu := l.in*l.width(), l.units*l.width()
	return []span{{0, nw}, {nw, nu}}
}

// kernelSpans lists the ranges of every prunable kernel in the model's
// parameter buffer.
func (m *Model) kernelSpans() []span {
	var ks []span
	off := 0
	for _, l := range m.layers {
		if p, ok := l.(prunable); ok {
			for _, k := range p.kernels() {
				ks = append(ks, span{off + k.off, k.n})
			}
		}
		off += l.numParams()
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
	for _, k := range m.kernelSpans() {
		if m.single {
			pruneKernel(m.params32[k.off:k.off+k.n], sparsity, &m.pruneOrder)
		} else {
			pruneKernel(m.params[k.off:k.off+k.n], sparsity, &m.pruneOrder)
		}
	}
}

// pruneKernel zeroes the ⌊sparsity·len(w)⌋ weights of smallest magnitude
// (ties broken by position, so that every replica agrees).
func pruneKernel[T float](w []T, sparsity float64, order *[]int32) {
	n := int(sparsity * float64(len(w)))
	if n == 0 {
		return
	}
	idx := (*order)[:0]
	for i := range w {
		idx = append(idx, int32(i))
	}
	slices.SortFunc(idx, func(a, b int32) int {
		if c := cmpAbs(float64(w[a]), float64(w[b])); c != 0 {
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
	for _, k := range m.kernelSpans() {
		if m.single {
			zeros += countZeros(m.params32[k.off : k.off+k.n])
		} else {
			zeros += countZeros(m.params[k.off : k.off+k.n])
		}
		total += k.n
	}
	if total == 0 {
		return 0
	}
	return float64(zeros) / float64(total)
}

func countZeros[T float](w []T) int {
	n := 0
	for _, v := range w {
		if v == 0 {
			n++
		}
	}
	return n
}

// keepZeros records the kernel weights that are zero, for restoreZeros to
// reset after an update.
func (m *Model) keepZeros() {
	m.zeros = m.zeros[:0]
	for _, k := range m.kernelSpans() {
		if m.single {
			m.zeros = appendZeros(m.zeros, m.params32[k.off:k.off+k.n], k.off)
		} else {
			m.zeros = appendZeros(m.zeros, m.params[k.off:k.off+k.n], k.off)
		}
	}
}

// appendZeros appends off+i for every w[i] that is zero.
func appendZeros[T float](dst []int32, w []T, off int) []int32 {
	for i, v := range w {
		if v == 0 {
			dst = append(dst, int32(off+i))
		}
	}
	return dst
}

// restoreZeros sets the weights keepZeros recorded back to zero.
func (m *Model) restoreZeros() {
	for _, i := range m.zeros {
		if m.single {
			m.params32[i] = 0
		} else {
			m.params[i] = 0
		}
	}
}
