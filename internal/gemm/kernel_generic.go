//go:build !amd64

package gemm

// useAsm and useAVX512 are false: there is no assembly off amd64.
var useAsm, useAVX512 = false, false

// kernel adds the products of tiles mr×k panels of A, one under the other,
// whose value (i, p) is a[i·rs + p·cs], and a k×nr packed panel of B to the
// mr×nr tiles of c at row stride ldc, one under the other, or with add
// false writes them there; k ≥ 1, tiles ≥ 1.
func kernel(tiles, k int, a []float32, rs, cs int, b, c []float32, ldc int, add bool) {
	kernelGo(tiles, k, a, rs, cs, b, c, ldc, add)
}
