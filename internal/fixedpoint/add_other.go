//go:build !amd64

package fixedpoint

// useAVX512 and useAVX2 are false: there is no assembly off amd64.
var useAVX512, useAVX2 = false, false

func add8(sum *int64, grad *float64, n int, k *[3]float64) int { panic("unreachable") }

func add4(sum *int64, grad *float64, n int, k *[3]float64) int { panic("unreachable") }

func add4f32(sum *int64, grad *float32, n int, k *[3]float64) int { panic("unreachable") }
