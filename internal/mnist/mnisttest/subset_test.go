package mnisttest

import (
	"slices"
	"testing"

	"ringtrain/internal/mnist"
)

// TestWriteSubsetReadsBack writes a subset and loads it as a coordinator
// would: the same images and labels as the real set's first ones.
func TestWriteSubsetReadsBack(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSubset(dir, 300, 100); err != nil {
		t.Fatal(err)
	}
	sets, err := full()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		split mnist.Split
		n     int
	}{{mnist.Train, 300}, {mnist.Test, 100}} {
		got, err := mnist.Load(dir, c.split)
		if err != nil {
			t.Fatal(err)
		}
		want := sets[i]
		if got.Count != c.n || !slices.Equal(got.Pixels, want.Pixels[:c.n*784]) || !slices.Equal(got.Labels, want.Labels[:c.n]) {
			t.Fatalf("split %v: %d images read back, not the real set's first %d", c.split, got.Count, c.n)
		}
	}
	if err := WriteSubset(dir, 70000, 1); err == nil {
		t.Fatal("a subset larger than the set was written")
	}
}
