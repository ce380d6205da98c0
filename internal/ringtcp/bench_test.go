package ringtcp

import (
	"fmt"
	"testing"

	"ringtrain/internal/allreduce/allreducetest"
)

// BenchmarkAllReduceTCP measures the ring all-reduce (average) over this
// transport on loopback, each rank a goroutine with its own Service, for
// N = 2 and 4 and vectors of 4 KiB to 64 MiB, as ringrpc's
// BenchmarkAllReduceGRPC does for gRPC: time per collective, algorithm
// bandwidth and bus bandwidth, algbw × 2(N−1)/N.
func BenchmarkAllReduceTCP(b *testing.B) {
	for _, n := range []int{2, 4} {
		for size := 4 << 10; size <= 64<<20; size *= 4 {
			b.Run(fmt.Sprintf("N=%d/size=%s", n, allreducetest.SizeName(size)), func(b *testing.B) {
				benchAllReduce(b, n, size)
			})
		}
	}
}

// BenchmarkAllReduceSHM is BenchmarkAllReduceTCP with the frames in
// shared memory (Config.SharedMemory), as neighbours on one host send
// them.
func BenchmarkAllReduceSHM(b *testing.B) {
	for _, n := range []int{2, 4} {
		for size := 4 << 10; size <= 64<<20; size *= 4 {
			b.Run(fmt.Sprintf("N=%d/size=%s", n, allreducetest.SizeName(size)), func(b *testing.B) {
				benchAllReduceOver(b, n, size, ServiceConfig{}, Config{SharedMemory: true})
			})
		}
	}
}

// BenchmarkAllReduceTCPTLS is the same over mutual TLS 1.3, N = 2.
func BenchmarkAllReduceTCPTLS(b *testing.B) {
	tc := tlsConfig(b)
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("N=2/size=%s", allreducetest.SizeName(size)), func(b *testing.B) {
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
	allreducetest.Bench(b, ts, size)
}
