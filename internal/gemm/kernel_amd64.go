package gemm

import "golang.org/x/sys/cpu"

var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel adds the product of A's mr×k panel, whose value (i, p) is
// a[i·rs + p·cs], and a k×nr packed panel of B to the mr×nr tile of c at
// row stride ldc, or with add false writes it there; k ≥ 1.
func kernel(k int, a []float32, rs, cs int, b, c []float32, ldc int, add bool) {
	if !useAsm {
		kernelGo(k, a, rs, cs, b, c, ldc, add)
		return
	}
	_ = a[(mr-1)*rs+(k-1)*cs]
	_ = b[k*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernel6x16(k, &a[0], rs, cs, &b[0], &c[0], ldc, add)
}

//go:noescape
func kernel6x16(k int, a *float32, rs, cs int, b, c *float32, ldc int, add bool)
