//go:build !amd64

package gemm

func add8(dst, src *float32, n int)             { panic("unreachable") }
func narrow4(dst *float32, src *float64, n int) { panic("unreachable") }
func widen4(dst *float64, src *float32, n int)  { panic("unreachable") }
func widenBias4(dst *float64, src *float32, bias *float64, rows, n int, relu bool) {
	panic("unreachable")
}
func narrowGrad4(dst *float32, db, y, dy *float64, rows, n int, relu bool) { panic("unreachable") }
func adam4(p, grad, m, v *float64, n int, k *[4]float64)                   { panic("unreachable") }
func adam8(p, grad, m, v, oldP, oldM, oldV *float32, n int, k *[4]float32) {
	panic("unreachable")
}
func sigmoid4(dst, src *float64, n int, k *expTable)                       { panic("unreachable") }
func tanh4(dst, src *float64, n int, k *expTable)                          { panic("unreachable") }
func biasReLU8(y, bias *float32, rows, n int, relu bool)                   { panic("unreachable") }
func reluGrad8(dz, y, dy *float32, db *float64, rows, n int, relu bool)    { panic("unreachable") }
func maxPool8(y, top, bottom *float32, ow, c int)                          { panic("unreachable") }
func maxPoolGrad8(dxTop, dxBottom, top, bottom, y, dy *float32, ow, c int) { panic("unreachable") }
func sparseAxpy(dst *float32, col *int32, val *float64, w *float32, count, n, rows int) bool {
	panic("unreachable")
}
func sparseOuter(dst *float32, col *int32, val *float64, src *float32, count, n, rows int) bool {
	panic("unreachable")
}
func finite32(v *float32, n int) bool { panic("unreachable") }
