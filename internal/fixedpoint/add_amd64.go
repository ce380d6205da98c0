package fixedpoint

import "golang.org/x/sys/cpu"

// useAVX512 selects the eight-lane conversion: AVX-512 has the float64 to
// int64 conversion AVX2 lacks.
var useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

// add8 converts and adds the values grad[0:n] (n a multiple of 8) eight at a
// time, stopping at the first group of eight that holds a value out of
// range (or NaN or infinite); it returns how many values it added.
//
//go:noescape
func add8(sum *int64, grad *float64, n int, k *[3]float64) int
