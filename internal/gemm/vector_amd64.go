package gemm

// add8 adds n (a multiple of 8) values of src to dst.
//
//go:noescape
func add8(dst, src *float32, n int)

// narrow4 converts n (a multiple of 4) float64 values to float32.
//
//go:noescape
func narrow4(dst *float32, src *float64, n int)

// widen4 converts n (a multiple of 4) float32 values to float64.
//
//go:noescape
func widen4(dst *float64, src *float32, n int)

// widenBias4 is WidenBias for rows of n values, n a multiple of 4.
//
//go:noescape
func widenBias4(dst *float64, src *float32, bias *float64, rows, n int, relu bool)

// narrowGrad4 is NarrowGrad for rows of n values, n a multiple of 4.
//
//go:noescape
func narrowGrad4(dst *float32, db, y, dy *float64, rows, n int, relu bool)

// adam4 is AdamUpdate for n (a multiple of 4) values; k holds c1, c2, α
// and ε.
//
//go:noescape
func adam4(p, grad, m, v *float64, n int, k *[4]float64)

// adam8 is AdamUpdate32Keeping for n (a multiple of 8) values; k holds c1,
// c2, α and ε. oldP, oldM and oldV may be p, m and v.
//
//go:noescape
func adam8(p, grad, m, v, oldP, oldM, oldV *float32, n int, k *[4]float32)

// sigmoid4 and tanh4 are Sigmoid and Tanh for n (a multiple of 4) values.
//
//go:noescape
func sigmoid4(dst, src *float64, n int, k *expTable)

//go:noescape
func tanh4(dst, src *float64, n int, k *expTable)

// biasReLU8 is BiasReLU for rows of n values, n a multiple of 8.
//
//go:noescape
func biasReLU8(y, bias *float32, rows, n int, relu bool)

// reluGrad8 is ReLUGrad for rows of n values, n a multiple of 8; y is
// read only with relu.
//
//go:noescape
func reluGrad8(dz, y, dy *float32, db *float64, rows, n int, relu bool)

// maxPool8 is MaxPool2x2 for c a multiple of 8.
//
//go:noescape
func maxPool8(y, top, bottom *float32, ow, c int)

// maxPoolGrad8 is MaxPool2x2Grad for c a multiple of 8.
//
//go:noescape
func maxPoolGrad8(dxTop, dxBottom, top, bottom, y, dy *float32, ow, c int)

// sparseAxpy is SparseAxpy for count columns, rows of n values and a w of
// rows rows; it reports false, having stopped, at a column not below rows.
//
//go:noescape
func sparseAxpy(dst *float32, col *int32, val *float64, w *float32, count, n, rows int) bool

// sparseOuter is SparseOuter for count columns, rows of n values and a
// dst of rows rows; it reports false, having stopped, at a column not
// below rows.
//
//go:noescape
func sparseOuter(dst *float32, col *int32, val *float64, src *float32, count, n, rows int) bool

// finite32 is Finite32 for n (a multiple of 32) values, n ≥ 32.
//
//go:noescape
func finite32(v *float32, n int) bool
