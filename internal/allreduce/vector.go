package allreduce

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// vector is what a collective reduces: a sequence of 8-byte elements that
// travel as little-endian bytes.
type vector interface {
	kind() Kind
	len() int
	// wire returns the bytes of elements [lo, hi), using buf if it must
	// convert; the result is valid until v or buf change.
	wire(buf *[]byte, lo, hi int) []byte
	// add adds the received elements into [lo, hi).
	add(lo, hi int, parts [][]byte) error
	// set overwrites [lo, hi) with the received elements.
	set(lo, hi int, parts [][]byte)
	// finish is called on [lo, hi) once its reduction is complete, before
	// it is passed on.
	finish(lo, hi int)
}

// viewer is a vector whose memory, on this machine, holds elements in
// their wire format: view returns the bytes of elements [lo, hi), or nil.
type viewer interface {
	view(lo, hi int) []byte
}

// floatVector sums float64 values, optionally averaging.
type floatVector struct {
	v       []float64
	average bool
	n       int
}

func (f *floatVector) kind() Kind { return Float64 }
func (f *floatVector) len() int   { return len(f.v) }

func (f *floatVector) wire(buf *[]byte, lo, hi int) []byte {
	*buf = encode(*buf, f.v[lo:hi])
	return *buf
}

func (f *floatVector) view(lo, hi int) []byte {
	if !littleEndian {
		return nil
	}
	return encode(nil, f.v[lo:hi])
}

func (f *floatVector) add(lo, hi int, parts [][]byte) error {
	seg := f.v[lo:hi]
	walk(parts, func(i int, b []byte) { addDecoded(seg[i:i+len(b)/8], b) })
	return nil
}

func (f *floatVector) set(lo, hi int, parts [][]byte) {
	seg := f.v[lo:hi]
	walk(parts, func(i int, b []byte) { decode(seg[i:i+len(b)/8], b) })
}

func (f *floatVector) finish(lo, hi int) {
	if f.average {
		scale := 1 / float64(f.n)
		seg := f.v[lo:hi]
		for i := range seg {
			seg[i] *= scale
		}
	}
}

// float32Vector sums float32 values, optionally averaging, two to an
// element: half the bytes of float64 on the wire. Its length in elements
// is ⌈len(v)/2⌉.
type float32Vector struct {
	v       []float32
	average bool
	n       int
}

func (f *float32Vector) kind() Kind { return Float32 }
func (f *float32Vector) len() int   { return (len(f.v) + 1) / 2 }

func (f *float32Vector) wire(buf *[]byte, lo, hi int) []byte {
	if b, ok := view32(f.v, lo, hi); ok {
		return b
	}
	*buf = encode32(*buf, f.v, lo, hi)
	return *buf
}

// values returns the float32 values of elements [lo, hi).
func (f *float32Vector) values(lo, hi int) []float32 {
	return f.v[2*lo : min(2*hi, len(f.v))]
}

func (f *float32Vector) view(lo, hi int) []byte {
	b, _ := view32(f.v, lo, hi)
	return b
}

func (f *float32Vector) add(lo, hi int, parts [][]byte) error {
	seg := f.values(lo, hi)
	walk(parts, func(i int, b []byte) { addDecoded32(seg[min(2*i, len(seg)):], b) })
	return nil
}

func (f *float32Vector) set(lo, hi int, parts [][]byte) {
	seg := f.values(lo, hi)
	walk(parts, func(i int, b []byte) { decode32(seg[min(2*i, len(seg)):], b) })
}

func (f *float32Vector) finish(lo, hi int) {
	if f.average {
		scale := 1 / float32(f.n)
		seg := f.values(lo, hi)
		for i := range seg {
			seg[i] *= scale
		}
	}
}

// intVector sums int64 values exactly, failing on overflow.
type intVector struct{ v []int64 }

func (iv *intVector) kind() Kind { return Int64 }
func (iv *intVector) len() int   { return len(iv.v) }

func (iv *intVector) wire(buf *[]byte, lo, hi int) []byte {
	seg := iv.v[lo:hi]
	if littleEndian {
		if len(seg) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&seg[0])), 8*len(seg))
	}
	b := (*buf)[:0]
	for _, x := range seg {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	*buf = b
	return b
}

func (iv *intVector) add(lo, hi int, parts [][]byte) error {
	seg := iv.v[lo:hi]
	var err error
	walk(parts, func(off int, b []byte) {
		for i := 0; i < len(b)/8 && err == nil; i++ {
			x := int64(binary.LittleEndian.Uint64(b[8*i:]))
			s, ok := addInt64(seg[off+i], x)
			if !ok {
				err = fmt.Errorf("element %d: %d + %d: %w", lo+off+i, seg[off+i], x, ErrOverflow)
			}
			seg[off+i] = s
		}
	})
	return err
}

func (iv *intVector) set(lo, hi int, parts [][]byte) {
	seg := iv.v[lo:hi]
	walk(parts, func(off int, b []byte) {
		for i := 0; i < len(b)/8; i++ {
			seg[off+i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	})
}

// walk calls fn for every run of whole 8-byte elements in parts, with the
// index of the run's first element. An element split between two parts is
// reassembled and passed on its own.
func walk(parts [][]byte, fn func(elem int, b []byte)) {
	var carry [8]byte
	n, elem := 0, 0 // n bytes of a split element are in carry
	for _, p := range parts {
		if n > 0 {
			k := copy(carry[n:], p)
			n, p = n+k, p[k:]
			if n < 8 {
				continue
			}
			fn(elem, carry[:])
			elem, n = elem+1, 0
		}
		whole := len(p) / 8 * 8
		if whole > 0 {
			fn(elem, p[:whole])
			elem += whole / 8
		}
		n = copy(carry[:], p[whole:])
	}
}

func (iv *intVector) finish(lo, hi int) {}

// addInt64 returns a+b and whether it did not overflow.
func addInt64(a, b int64) (int64, bool) {
	s := a + b
	return s, (a >= 0) != (b >= 0) || (s >= 0) == (a >= 0)
}
