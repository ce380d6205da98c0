package allreduce

import (
	"encoding/binary"
	"math"
)

// Conversions between float32 and the two 16-bit float formats gradients
// may travel in: IEEE 754 binary16 (float16: 5 exponent bits, 10 mantissa
// bits, largest finite 65504) and bfloat16 (float32's upper half: float32's
// range, 7 mantissa bits). Narrowing rounds to nearest, ties to even, like
// a hardware conversion: values beyond float16's range become ±Inf,
// float16 keeps subnormals, ±0 keeps its sign, and a NaN stays NaN, quiet,
// its sign and the top of its payload kept (as x86's F16C instructions do,
// which the eight-lane loops use where the CPU has them: the two paths
// give the same bits). Widening is exact.
//
// Go has no 16-bit float type: where the CPU lacks AVX2 and F16C the loops
// are scalar, branch-light bit manipulation, a few nanoseconds per value
// (BenchmarkHalf).

// toFloat16 rounds f to the nearest float16, ties to even, by table
// (after J. van der Zijp, "Fast half float conversions", with rounding):
// f's sign and exponent select the float16 bits the exponent contributes
// and how far the significand shifts right; the rounding bias added before
// the shift carries into the exponent (up to Inf) when the significand
// rounds up. NaNs, rare, take a branch of their own.
func toFloat16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16)&0x8000 | 0x7e00 | uint16(u>>13)&0x3ff
	}
	t := &f16Narrow[u>>23]
	m := u&0x7fffff | t.implicit
	m += t.bias + (m>>t.shift)&1
	return t.base + uint16(m>>t.shift)
}

// f16Narrow is toFloat16's table, indexed by a float32's sign and
// exponent bits.
var f16Narrow = func() *[512]f16Entry {
	var t [512]f16Entry
	for i := range t {
		exp := i & 0xff
		sign := uint16(i>>8) << 15
		e := exp - 127 + 15 // float16 exponent field, when normal
		x := &t[i]
		switch {
		case exp == 0xff || e >= 0x1f: // Inf (NaNs branch off first), overflow
			x.base, x.shift = sign|0x7c00, 24
		case e >= 1: // normal: the implicit bit adds one to the exponent
			x.base, x.shift, x.implicit = sign|uint16(e-1)<<10, 13, 1<<23
		case e >= -10: // subnormal, or 2^-25 ≤ |f| < 2^-24, which may round up to 2^-24
			x.base, x.shift, x.implicit = sign, uint8(14-e), 1<<23
		default: // rounds to zero
			x.base, x.shift = sign, 24
		}
		x.bias = 1<<(x.shift-1) - 1
	}
	return &t
}()

// f16Entry is how toFloat16 narrows the float32s of one sign and
// exponent: the significand (with implicit, its leading bit, where the
// float16 needs it) plus bias plus the rounding bit's parity, shifted
// right by shift, added to base.
type f16Entry struct {
	implicit, bias uint32
	base           uint16
	shift          uint8
}

// fromFloat16 returns the value of the float16 h, exactly.
func fromFloat16(h uint16) float32 {
	return half16[h]
}

// half16 holds the value of every float16, indexed by its bits: a lookup
// is the fastest widening without the hardware's conversion instruction.
var half16 = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = widenFloat16(uint16(h))
	}
	return &t
}()

// widenFloat16 computes the value of the float16 h.
func widenFloat16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp, man := uint32(h>>10)&0x1f, uint32(h&0x3ff)
	switch exp {
	case 0x1f: // Inf, or NaN made quiet, the payload kept
		if man != 0 {
			return math.Float32frombits(sign | 0x7fc00000 | man<<13)
		}
		return math.Float32frombits(sign | 0x7f800000)
	case 0: // zero or subnormal: man × 2^-24, exact in float32
		v := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// toBFloat16 rounds f to the nearest bfloat16, ties to even: the upper
// half of its bits after adding the rounding bias, which carries into the
// exponent (up to Inf) when the mantissa rounds up. A NaN is kept quiet,
// since dropping the low half could leave an Inf.
func toBFloat16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// fromBFloat16 returns the value of the bfloat16 h, exactly.
func fromBFloat16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// narrow16 writes the 16-bit forms of v to b (2·len(v) bytes, little
// endian). When lost is not nil it also adds to lost[i] what rounding took
// from v[i], v[i] − widened, times scale, where that is finite: what error
// feedback gives back to the next step.
func narrow16(k Kind, b []byte, v, lost []float32, scale float32) {
	b = b[:2*len(v)]
	if lost != nil {
		lost = lost[:len(v)]
	}
	if n := len(v) &^ 7; useSIMD && n > 0 {
		switch {
		case lost != nil && k == BFloat16:
			narrowLostBF16(&b[0], &v[0], &lost[0], n, scale)
		case lost != nil:
			narrowLostF16(&b[0], &v[0], &lost[0], n, scale)
		case k == BFloat16:
			narrowBF16(&b[0], &v[0], n)
		default:
			narrowF16(&b[0], &v[0], n)
		}
		if lost != nil {
			lost = lost[n:]
		}
		b, v = b[2*n:], v[n:]
	}
	switch {
	case lost != nil:
		for i, x := range v {
			var h uint16
			var r float32
			if k == BFloat16 {
				h = toBFloat16(x)
				r = fromBFloat16(h)
			} else {
				h = toFloat16(x)
				r = half16[h]
			}
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
			if d := (x - r) * scale; d-d == 0 {
				lost[i] += d
			}
		}
	case k == BFloat16:
		for i, x := range v {
			h := toBFloat16(x)
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		}
	default:
		for i, x := range v {
			h := toFloat16(x)
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		}
	}
}

// widenAdd16 adds the 16-bit values in b to v, len(v) of them.
func widenAdd16(k Kind, v []float32, b []byte) {
	b = b[:2*len(v)]
	if n := len(v) &^ 7; useSIMD && n > 0 {
		if k == BFloat16 {
			widenAddBF16(&v[0], &b[0], n)
		} else {
			widenAddF16(&v[0], &b[0], n)
		}
		b, v = b[2*n:], v[n:]
	}
	if k == BFloat16 {
		for i := range v {
			v[i] += fromBFloat16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return
	}
	for i := range v {
		v[i] += half16[binary.LittleEndian.Uint16(b[2*i:])]
	}
}

// widen16 copies the 16-bit values in b into v, len(v) of them.
func widen16(k Kind, v []float32, b []byte) {
	b = b[:2*len(v)]
	if n := len(v) &^ 7; useSIMD && n > 0 {
		if k == BFloat16 {
			widenBF16(&v[0], &b[0], n)
		} else {
			widenF16(&v[0], &b[0], n)
		}
		b, v = b[2*n:], v[n:]
	}
	if k == BFloat16 {
		for i := range v {
			v[i] = fromBFloat16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return
	}
	for i := range v {
		v[i] = half16[binary.LittleEndian.Uint16(b[2*i:])]
	}
}

// round16 replaces every value of v with its 16-bit rounding, the value
// the other ranks decode from the wire, adding what rounding took, times
// scale, to lost as narrow16 does.
func round16(k Kind, v, lost []float32, scale float32) {
	if lost != nil {
		lost = lost[:len(v)]
	}
	if useSIMD {
		// Through the wire's form, a block at a time.
		var buf [2048]byte
		for len(v) >= 8 {
			n := min(len(v), len(buf)/2) &^ 7
			var l []float32
			if lost != nil {
				l, lost = lost[:n], lost[n:]
			}
			narrow16(k, buf[:2*n], v[:n], l, scale)
			widen16(k, v[:n], buf[:2*n])
			v = v[n:]
		}
	}
	for i, x := range v {
		var r float32
		if k == BFloat16 {
			r = fromBFloat16(toBFloat16(x))
		} else {
			r = half16[toFloat16(x)]
		}
		if lost != nil {
			if d := (x - r) * scale; d-d == 0 {
				lost[i] += d
			}
		}
		v[i] = r
	}
}

// Round16 returns the value x takes on the wire as a value of the 16-bit
// kind k (Float16 or BFloat16), rounded to nearest even; any other kind
// leaves x as it is.
func Round16(k Kind, x float32) float32 {
	switch k {
	case Float16:
		return half16[toFloat16(x)]
	case BFloat16:
		return fromBFloat16(toBFloat16(x))
	}
	return x
}
