package allreduce

import "golang.org/x/sys/cpu"

// useSIMD selects the eight-lane conversions: F16C's VCVTPS2PH and
// VCVTPH2PS for float16 (rounding to nearest even, as toFloat16 does), AVX2
// integer arithmetic for bfloat16.
var useSIMD = cpu.X86.HasAVX2 && hasF16C()

// hasF16C reports CPUID's F16C bit.
func hasF16C() bool

// The functions below convert n values, n a multiple of 8, as the scalar
// loops of narrow16, widen16 and widenAdd16 do; lost may not be nil where
// it is an argument.

//go:noescape
func narrowF16(dst *byte, src *float32, n int)

//go:noescape
func narrowLostF16(dst *byte, src, lost *float32, n int, scale float32)

//go:noescape
func widenF16(dst *float32, src *byte, n int)

//go:noescape
func widenAddF16(dst *float32, src *byte, n int)

//go:noescape
func narrowBF16(dst *byte, src *float32, n int)

//go:noescape
func narrowLostBF16(dst *byte, src, lost *float32, n int, scale float32)

//go:noescape
func widenBF16(dst *float32, src *byte, n int)

//go:noescape
func widenAddBF16(dst *float32, src *byte, n int)
