//go:build !amd64

package gemm

// kernel adds the product of A's mr×k panel, whose value (i, p) is
// a[i·rs + p·cs], and a k×nr packed panel of B to the mr×nr tile of c at
// row stride ldc, or with add false writes it there; k ≥ 1.
func kernel(k int, a []float32, rs, cs int, b, c []float32, ldc int, add bool) {
	kernelGo(k, a, rs, cs, b, c, ldc, add)
}
