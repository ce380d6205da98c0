package allreduce

import (
	"encoding/binary"
	"math"
	"unsafe"

	"ringtrain/internal/gemm"
)

// Values travel as little-endian float64. On little-endian machines (all the
// usual ones) a []float64 already is that byte sequence, so the hot paths
// view memory instead of converting element by element; elsewhere, and for
// misaligned buffers, they fall back to explicit conversion.

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// encode returns the wire bytes of v: a view of v itself on little-endian
// machines, else v converted into buf (grown as needed). The caller must not
// change v while it uses the result.
func encode(buf []byte, v []float64) []byte {
	if littleEndian {
		if len(v) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 8*len(v))
	}
	n := 8 * len(v)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	for i, x := range v {
		binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(x))
	}
	return buf
}

// floats views b as float64 values when the machine and b's alignment
// allow it.
func floats(b []byte) ([]float64, bool) {
	if !littleEndian || len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&b[0])), len(b)/8), true
}

// decode copies the values in b into v.
func decode(v []float64, b []byte) {
	if f, ok := floats(b); ok {
		copy(v, f)
		return
	}
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
}

// addDecoded adds the values in b to v.
func addDecoded(v []float64, b []byte) {
	if f, ok := floats(b); ok {
		f = f[:len(v)]
		for i, x := range f {
			v[i] += x
		}
		return
	}
	for i := range v {
		v[i] += math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
}

// float32 values travel as little-endian float32, two to an 8-byte
// element of the collective; an odd vector's last element is padded with
// four zero bytes.

// view32 returns the wire bytes of the elements [lo, hi) of v (values
// 2·lo to 2·hi) as a view of v, when the machine is little-endian and the
// range needs no padding.
func view32(v []float32, lo, hi int) ([]byte, bool) {
	if !littleEndian || 2*hi > len(v) {
		return nil, false
	}
	if hi <= lo {
		return nil, true
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[2*lo])), 8*(hi-lo)), true
}

// encode32 converts the elements [lo, hi) of v into buf (grown as
// needed), padding a last half element with zeros.
func encode32(buf []byte, v []float32, lo, hi int) []byte {
	a, b := 2*lo, min(2*hi, len(v))
	n := 8 * (hi - lo)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	clear(buf[4*max(b-a, 0):])
	for i, x := range v[a:max(a, b)] {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return buf
}

// floats32 views b as float32 values when the machine and b's alignment
// allow it.
func floats32(b []byte) ([]float32, bool) {
	if !littleEndian || len(b) < 4 || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), true
}

// addDecoded32 adds the float32 values in b to v, ignoring those past its
// end (the padding): with vector instructions (gemm.Add, the same float32
// additions) where b can be viewed as float32 values.
func addDecoded32(v []float32, b []byte) {
	n := min(len(v), len(b)/4)
	if f, ok := floats32(b); ok {
		gemm.Add(v[:n], f[:n])
		return
	}
	for i := range n {
		v[i] += math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}

// decode32 copies the float32 values in b into v, ignoring those past its
// end.
func decode32(v []float32, b []byte) {
	n := min(len(v), len(b)/4)
	if f, ok := floats32(b); ok {
		copy(v[:n], f[:n])
		return
	}
	for i := range n {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}
