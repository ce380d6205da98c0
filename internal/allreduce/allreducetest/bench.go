package allreducetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// Bench times b.N averaging all-reduces of size bytes of float64 over the
// connected transports ts (rank i at index i), each rank on a goroutine of
// its own, and reports, after nccl-tests, the algorithm bandwidth (bytes /
// time) and the bus bandwidth, algbw × 2(N−1)/N, which is comparable
// across N. The caller closes ts.
func Bench(b *testing.B, ts []allreduce.Transport, size int) {
	n := len(ts)
	rings := make([]*allreduce.Ring, n)
	vecs := make([][]float64, n)
	for r := range rings {
		rings[r] = allreduce.New(ts[r], allreduce.DefaultConfig())
		vecs[r] = make([]float64, size/8)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.SetBytes(int64(size))
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < b.N && errs[r] == nil; i++ {
				errs[r] = rings[r].AllReduce(ctx, uint64(i), vecs[r], allreduce.Average)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	for r, err := range errs {
		if err != nil {
			b.Fatalf("rank %d: %v", r, err)
		}
	}
	algbw := float64(size) * float64(b.N) / b.Elapsed().Seconds() / 1e9
	b.ReportMetric(algbw, "algbw-GB/s")
	b.ReportMetric(algbw*2*float64(n-1)/float64(n), "busbw-GB/s")
}

// SizeName names a benchmark's vector size: 4KiB, 16MiB.
func SizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
