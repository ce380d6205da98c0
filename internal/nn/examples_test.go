package nn

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestExamplesBuild checks that every model description in examples/ parses,
// builds a model for MNIST (784 inputs, 10 classes) and computes a finite
// loss and gradient, so that the README's commands keep working.
func TestExamplesBuild(t *testing.T) {
	paths, err := filepath.Glob("../../examples/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := ParseSpec(data)
			if err != nil {
				t.Fatal(err)
			}
			m, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			if m.InputSize() != 784 || m.OutputSize() != 10 {
				t.Fatalf("%d inputs, %d outputs; want 784 and 10", m.InputSize(), m.OutputSize())
			}
			m.Initialize(1)
			b := randomBatch(m, 4, false, rand.New(rand.NewPCG(1, 2)))
			for i := range b.X {
				b.X[i] = math.Abs(b.X[i]) / 4 // pixels are in [0, 1]
			}
			loss := m.ComputeGradients(b, 0)
			if math.IsNaN(loss) || math.IsInf(loss, 0) || loss <= 0 {
				t.Fatalf("loss %v", loss)
			}
			for i, g := range gradsOf(m) {
				if math.IsNaN(g) || math.IsInf(g, 0) {
					t.Fatalf("gradient %d is %v", i, g)
				}
			}
			t.Logf("%s: %d parameters, loss %.4f", spec.Summary(), m.NumParams(), loss)
		})
	}
}
