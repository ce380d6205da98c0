package fixedpoint

import "golang.org/x/sys/cpu"

// useAVX512 selects the eight-lane conversion: AVX-512 has the float64 to
// int64 conversion AVX2 lacks.
var useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

// useAVX2 selects the four-lane conversion where there is no AVX-512.
var useAVX2 = cpu.X86.HasAVX2 && !useAVX512

// add8 converts and adds the values grad[0:n] (n a multiple of 8) eight at a
// time, stopping at the first group of eight that holds a value out of
// range (or NaN or infinite); it returns how many values it added.
//
//go:noescape
func add8(sum *int64, grad *float64, n int, k *[3]float64) int

// add4 is add8 in AVX2, four at a time (n a multiple of 4).
//
//go:noescape
func add4(sum *int64, grad *float64, n int, k *[3]float64) int

// add4f32 is add4 for float32 values, widened exactly.
//
//go:noescape
func add4f32(sum *int64, grad *float32, n int, k *[3]float64) int
