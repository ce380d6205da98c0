package grpcopts

import (
	"math/bits"
	"sync"
)

// Pool is a gRPC buffer pool (mem.BufferPool) that, unlike gRPC's own,
// does not clear the buffers it hands out: gRPC overwrites what it reads
// into and what it serialises into, so clearing only spends memory
// bandwidth, which the all-reduce needs (BenchmarkAllReduceGRPC).
// Buffers come in power-of-two classes from 512 bytes to 16 MiB; other
// sizes are allocated and dropped.
var Pool = newPool()

const (
	minClass = 9  // 512 B
	maxClass = 24 // 16 MiB
)

type pool struct {
	classes [maxClass + 1]sync.Pool
}

func newPool() *pool { return &pool{} }

// class is the smallest class whose buffers hold n bytes.
func class(n int) int {
	if n <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(n - 1))
}

// Get returns a buffer of length n.
func (p *pool) Get(n int) *[]byte {
	c := class(n)
	if c > maxClass {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// Put returns a buffer obtained from Get.
func (p *pool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minClass || c > 1<<maxClass || c&(c-1) != 0 {
		return
	}
	p.classes[bits.Len(uint(c))-1].Put(b)
}
