package ringtcp

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// BenchmarkAllReduceTCP measures the ring all-reduce (average) over this
// transport on loopback, each rank a goroutine with its own Service, for
// N = 2 and 4 and vectors of 4 KiB to 64 MiB, as ringrpc's
// BenchmarkAllReduceGRPC does for gRPC: time per collective, algorithm
// bandwidth and bus bandwidth, algbw × 2(N−1)/N.
func BenchmarkAllReduceTCP(b *testing.B) {
	for _, n := range []int{2, 4} {
		for size := 4 << 10; size <= 64<<20; size *= 4 {
			b.Run(fmt.Sprintf("N=%d/size=%s", n, byteSize(size)), func(b *testing.B) {
				benchAllReduce(b, n, size)
			})
		}
	}
}

// BenchmarkAllReduceTCPTLS is the same over mutual TLS 1.3, N = 2.
func BenchmarkAllReduceTCPTLS(b *testing.B) {
	tc := tlsConfig(b)
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("N=2/size=%s", byteSize(size)), func(b *testing.B) {
			benchAllReduceOver(b, 2, size, ServiceConfig{TLS: tc}, Config{TLS: tc})
		})
	}
}

func benchAllReduce(b *testing.B, n, size int) {
	benchAllReduceOver(b, n, size, ServiceConfig{}, Config{})
}

func benchAllReduceOver(b *testing.B, n, size int, svcCfg ServiceConfig, cfg Config) {
	ts := connectRing(b, n, "bench", svcCfg, cfg)
	defer func() {
		for _, tr := range ts {
			tr.Close()
		}
	}()
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
	for r := 0; r < n; r++ {
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

func byteSize(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
