package allreduce

import (
	"encoding/binary"
	"math"
)

// half16Vector reduces float32 values most of which travel in 16 bits
// (float16 or bfloat16), four to an 8-byte element. The first few values
// travel exactly, as float32, two to an element: values that are read, not
// applied (a loss, counters).
//
// Sums happen in float32: a rank decodes each arriving segment, adds it to
// its own float32 values and rounds the partial sum to 16 bits only to
// send it on, so each hop rounds once rather than accumulating in 16 bits.
// The rank that completes a chunk rounds it (after averaging) in place
// before the all-gather passes it on: every rank ends with the same
// rounded bits.
//
// When lost is not nil it is error feedback: each rounding of this rank's
// sends and of the chunk it completes adds what it took from the sum to
// lost (scaled back to sum units when averaging), so that adding lost to
// the next collective's input gives the sum back what compression took.
type half16Vector struct {
	k       Kind
	v       []float32
	exact   int // values that travel as float32: v[:exact]
	xElems  int // elements of the exact values: ⌈exact/2⌉
	lost    []float32
	average bool
	n       int
}

func (h *half16Vector) kind() Kind { return h.k }
func (h *half16Vector) len() int   { return h.xElems + (len(h.v)-h.exact+3)/4 }

// split cuts the elements [lo, hi) into the exact values' [lo, mid) and
// the compressed ones' [mid, hi).
func (h *half16Vector) split(lo, hi int) (mid int) { return min(max(lo, h.xElems), hi) }

// exactValues returns the bounds in v of the exact elements [lo, hi).
func (h *half16Vector) exactValues(lo, hi int) (int, int) {
	return min(2*lo, h.exact), min(2*hi, h.exact)
}

// halfValues returns the bounds in v of the compressed elements among
// [lo, hi).
func (h *half16Vector) halfValues(lo, hi int) (int, int) {
	lo, hi = max(lo, h.xElems), max(hi, h.xElems)
	return min(h.exact+4*(lo-h.xElems), len(h.v)), min(h.exact+4*(hi-h.xElems), len(h.v))
}

// lostOf returns error feedback's values for v[a:z], compressed values.
func (h *half16Vector) lostOf(a, z int) []float32 {
	if h.lost == nil {
		return nil
	}
	return h.lost[a-h.exact : z-h.exact]
}

func (h *half16Vector) wire(buf *[]byte, lo, hi int) []byte {
	n := 8 * (hi - lo)
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	mid := h.split(lo, hi)
	a, z := h.exactValues(lo, mid)
	for i, x := range h.v[a:z] {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	clear(b[4*(z-a) : 8*(mid-lo)])
	a, z = h.halfValues(mid, hi)
	hb := b[8*(mid-lo):]
	narrow16(h.k, hb, h.v[a:z], h.lostOf(a, z), 1)
	clear(hb[2*(z-a):])
	*buf = b
	return b
}

func (h *half16Vector) add(lo, hi int, parts [][]byte) error {
	h.each(lo, parts, func(xb []byte, xv []float32, hb []byte, hv []float32) {
		for j := range xv {
			xv[j] += math.Float32frombits(binary.LittleEndian.Uint32(xb[4*j:]))
		}
		widenAdd16(h.k, hv, hb)
	})
	return nil
}

func (h *half16Vector) set(lo, hi int, parts [][]byte) {
	h.each(lo, parts, func(xb []byte, xv []float32, hb []byte, hv []float32) {
		for j := range xv {
			xv[j] = math.Float32frombits(binary.LittleEndian.Uint32(xb[4*j:]))
		}
		widen16(h.k, hv, hb)
	})
}

// each calls fn for every run of whole elements in parts, from element lo
// on: the run's exact elements (bytes xb, values xv) and its compressed
// ones (bytes hb, values hv). The last element of either may hold padding
// rather than values.
func (h *half16Vector) each(lo int, parts [][]byte, fn func(xb []byte, xv []float32, hb []byte, hv []float32)) {
	walk(parts, func(i int, b []byte) {
		a, z := lo+i, lo+i+len(b)/8
		mid := h.split(a, z)
		xa, xz := h.exactValues(a, mid)
		ha, hz := h.halfValues(mid, z)
		fn(b[:8*(mid-a)], h.v[xa:xz], b[8*(mid-a):], h.v[ha:hz])
	})
}

func (h *half16Vector) finish(lo, hi int) {
	mid := h.split(lo, hi)
	a, z := h.exactValues(lo, mid)
	if h.average {
		s := 1 / float32(h.n)
		for i := a; i < z; i++ {
			h.v[i] *= s
		}
	}
	a, z = h.halfValues(mid, hi)
	seg := h.v[a:z]
	scale := float32(1)
	if h.average {
		s := 1 / float32(h.n)
		for i := range seg {
			seg[i] *= s
		}
		scale = float32(h.n)
	}
	round16(h.k, seg, h.lostOf(a, z), scale)
}
