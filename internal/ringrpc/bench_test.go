package ringrpc

import (
	"fmt"
	"testing"

	"ringtrain/internal/allreduce/allreducetest"
)

// BenchmarkAllReduceGRPC measures the ring all-reduce (average) over real
// gRPC streams on loopback, each rank a goroutine with its own server, for
// N = 2 and 4 ranks and vectors of 4 KiB to 64 MiB. It reports the time per
// collective and, after nccl-tests, the algorithm bandwidth (bytes / time)
// and the bus bandwidth, algbw × 2(N−1)/N, which is comparable across N.
func BenchmarkAllReduceGRPC(b *testing.B) {
	for _, n := range []int{2, 4} {
		for size := 4 << 10; size <= 64<<20; size *= 4 {
			b.Run(fmt.Sprintf("N=%d/size=%s", n, allreducetest.SizeName(size)), func(b *testing.B) {
				benchAllReduce(b, n, size)
			})
		}
	}
}

func benchAllReduce(b *testing.B, n, size int) {
	ts := connectRing(b, n, "bench")
	defer func() {
		for _, tr := range ts {
			tr.Close()
		}
	}()
	allreducetest.Bench(b, ts, size)
}
