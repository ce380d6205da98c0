//go:build !amd64

package allreduce

const useSIMD = false

func narrowF16(dst *byte, src *float32, n int)                           { panic("unreachable") }
func narrowLostF16(dst *byte, src, lost *float32, n int, scale float32)  { panic("unreachable") }
func widenF16(dst *float32, src *byte, n int)                            { panic("unreachable") }
func widenAddF16(dst *float32, src *byte, n int)                         { panic("unreachable") }
func narrowBF16(dst *byte, src *float32, n int)                          { panic("unreachable") }
func narrowLostBF16(dst *byte, src, lost *float32, n int, scale float32) { panic("unreachable") }
func widenBF16(dst *float32, src *byte, n int)                           { panic("unreachable") }
func widenAddBF16(dst *float32, src *byte, n int)                        { panic("unreachable") }
