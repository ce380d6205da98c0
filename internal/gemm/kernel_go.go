package gemm

// kernelGo is the micro-kernel in Go: the reference for the assembly one
// and the kernel where there is none.
func kernelGo(tiles, k int, a []float32, rs, cs int, b, c []float32, ldc int, add bool) {
	for t := range tiles {
		tileGo(k, a[t*mr*rs:], rs, cs, b, c[t*mr*ldc:], ldc, add)
	}
}

// tileGo is kernelGo for one tile.
func tileGo(k int, a []float32, rs, cs int, b, c []float32, ldc int, add bool) {
	var acc [mr * nr]float32
	for p := range k {
		bp := b[p*nr : p*nr+nr]
		for i := range mr {
			av := a[i*rs+p*cs]
			row := acc[i*nr : i*nr+nr]
			for j, bv := range bp {
				row[j] += av * bv
			}
		}
	}
	for i := range mr {
		dst := c[i*ldc : i*ldc+nr]
		if !add {
			copy(dst, acc[i*nr:i*nr+nr])
			continue
		}
		for j := range dst {
			dst[j] += acc[i*nr+j]
		}
	}
}
