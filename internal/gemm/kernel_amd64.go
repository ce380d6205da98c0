package gemm

import "golang.org/x/sys/cpu"

var (
	useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	// useAVX512 chooses the 6×32 AVX-512 kernel, which on cores with
	// 512-bit FMA units (Zen 5, Intel server cores) does twice the
	// arithmetic of the AVX2 one per cycle; with it off, the AVX2 kernel
	// does each half of a tile. Both compute every element by the same
	// fused multiply-adds in the same order: the results are identical.
	useAVX512 = useAsm && cpu.X86.HasAVX512F
)

// kernel adds the products of tiles mr×k panels of A, one under the other,
// whose value (i, p) is a[i·rs + p·cs], and a k×nr packed panel of B to the
// mr×nr tiles of c at row stride ldc, one under the other, or with add
// false writes them there; k ≥ 1, tiles ≥ 1.
func kernel(tiles, k int, a []float32, rs, cs int, b, c []float32, ldc int, add bool) {
	if !useAsm {
		kernelGo(tiles, k, a, rs, cs, b, c, ldc, add)
		return
	}
	_ = a[(tiles*mr-1)*rs+(k-1)*cs]
	_ = b[k*nr-1]
	_ = c[(tiles*mr-1)*ldc+nr-1]
	if useAVX512 {
		kernel6x32(k, &a[0], rs, cs, &b[0], &c[0], ldc, add, tiles)
		return
	}
	kernel6x16(k, &a[0], rs, cs, &b[0], &c[0], ldc, add, tiles, nr)
	kernel6x16(k, &a[0], rs, cs, &b[nr/2], &c[nr/2], ldc, add, tiles, nr)
}

//go:noescape
func kernel6x16(k int, a *float32, rs, cs int, b, c *float32, ldc int, add bool, tiles, ldb int)

//go:noescape
func kernel6x32(k int, a *float32, rs, cs int, b, c *float32, ldc int, add bool, tiles int)
