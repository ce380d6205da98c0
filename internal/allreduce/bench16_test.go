package allreduce_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"ringtrain/internal/allreduce"
)

// BenchmarkAllReduce16 reduces the 784-512-512-10 model's gradient (669,706
// values of gradient-like magnitude) on 4 ranks over in-memory pipes, in
// float32 and compressed with error feedback: the CPU the conversions add.
func BenchmarkAllReduce16(b *testing.B) {
	const n, length = 4, 669_706
	for _, kind := range []allreduce.Kind{allreduce.Float32, allreduce.Float16, allreduce.BFloat16} {
		b.Run(kind.String(), func(b *testing.B) {
			ts := allreduce.NewMemRing(n)
			defer func() {
				for _, t := range ts {
					t.Close()
				}
			}()
			rings := make([]*allreduce.Ring, n)
			vs, res := make([][]float32, n), make([][]float32, n)
			rng := rand.New(rand.NewPCG(1, 2))
			for r := range rings {
				rings[r] = allreduce.New(ts[r], allreduce.DefaultConfig())
				vs[r], res[r] = make([]float32, length), make([]float32, length)
				for i := range vs[r] {
					vs[r][i] = float32(rng.NormFloat64() * 1e-4)
				}
			}
			b.SetBytes(4 * length)
			step := uint64(0)
			for b.Loop() {
				step++
				var wg sync.WaitGroup
				for r := range rings {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var err error
						if kind == allreduce.Float32 {
							err = rings[r].AllReduceFloat32(context.Background(), step, vs[r], allreduce.Average)
						} else {
							err = rings[r].AllReduce16(context.Background(), step, vs[r], allreduce.Average, allreduce.Compression{Kind: kind, Residual: res[r]})
						}
						if err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}
