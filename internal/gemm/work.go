package gemm

import "sync"

// work holds a call's packing buffers and edge tile, reused across calls.
type work struct {
	a, b []float32
	tile [mr * nr]float32
}

var pool = sync.Pool{New: func() any { return new(work) }}

func getWork() *work  { return pool.Get().(*work) }
func putWork(w *work) { pool.Put(w) }
