package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
)

// BenchmarkDeterministicCost measures what -deterministic costs on three
// models, at their benchmark batches, over an in-memory ring: ordinary
// steps against deterministic ones with the coordinator's default
// micro-batch (the largest that divides every per-worker batch of 1 to 8
// workers sharing the global batch).
func BenchmarkDeterministicCost(b *testing.B) {
	data := loadMNIST(b, mnist.Train)
	example := func(name string) nn.Spec {
		raw, err := os.ReadFile(filepath.Join("..", "..", "bench", name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		s, err := nn.ParseSpec(raw)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	models := []struct {
		name  string
		spec  nn.Spec
		batch int
	}{
		{"keras", nn.KerasMNIST(), 32},
		{"mlp512", example("mlp512"), 128},
		{"cnn", example("cnn-noschedule"), 32},
	}
	for _, m := range models {
		for _, n := range []int{1, 2} {
			global := m.batch * n
			for _, mode := range []string{"ordinary", "deterministic"} {
				b.Run(fmt.Sprintf("%s/N=%d/%s", m.name, n, mode), func(b *testing.B) {
					micro := 0
					if mode == "deterministic" {
						micro = defaultMicroBatch(global)
					}
					rep := newReplicas(b, m.spec, data, n, global, micro, 1)
					defer rep.close()
					b.ResetTimer()
					if _, err := rep.train(b, b.N); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(global*b.N)/b.Elapsed().Seconds(), "samples/s")
				})
			}
		}
	}
}

// defaultMicroBatch is coordinator.DefaultMicroBatch (which this package
// cannot import): the gcd of the per-worker batches of 1 to 8 workers.
func defaultMicroBatch(global int) int {
	g := 0
	for n := 1; n <= 8; n++ {
		if global%n == 0 {
			a, b := g, global/n
			for b != 0 {
				a, b = b, a%b
			}
			g = a
		}
	}
	return g
}
