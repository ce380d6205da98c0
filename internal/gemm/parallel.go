package gemm

import (
	"runtime"
	"sync"
)

// minSplitFlops is the size (2·m·n·k) from which a product is split across
// cores: about 40 µs of one core's work, against the few microseconds a
// goroutine's start and the extra packing of B cost.
const minSplitFlops = 4 << 20

// split returns how many row bands of C to compute concurrently: one per
// core (GOMAXPROCS), fewer when the product is small or C has too few rows
// for each band to hold whole blocks of micro-kernel tiles.
func split(m, n, k int) int {
	procs := runtime.GOMAXPROCS(0)
	if procs < 2 || 2*m*n*k < minSplitFlops {
		return 1
	}
	return max(1, min(procs, m/(4*mr)))
}

// parallel computes C in parts bands of rows, each a whole number of
// micro-kernel tiles, parts−1 of them on goroutines of their own and the
// last on the caller's; it returns when all are done. Each band reads
// the whole of op(B) and packs it itself.
func parallel(parts int, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	tiles := (m + mr - 1) / mr
	band := func(i int) (int, int) {
		return min(m, i*tiles/parts*mr), min(m, (i+1)*tiles/parts*mr)
	}
	// Row i of op(A) starts at a[i·lda], or at a[i] when A is transposed.
	rowStride := lda
	if transA {
		rowStride = 1
	}
	var wg sync.WaitGroup
	run := func(i int) {
		lo, hi := band(i)
		if hi > lo {
			serial(transA, transB, hi-lo, n, k, a[lo*rowStride:], lda, b, ldb, beta, c[lo*ldc:], ldc)
		}
	}
	for i := range parts - 1 {
		wg.Go(func() { run(i) })
	}
	run(parts - 1)
	wg.Wait()
}
