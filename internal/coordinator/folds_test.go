package coordinator

import (
	"testing"

	"ringtrain/internal/mnist"
)

// TestCrossValidationSplit checks that the validation parts of the k folds
// are disjoint, cover every sample once, differ in size by at most one,
// and that each fold trains on exactly the samples it does not validate on.
func TestCrossValidationSplit(t *testing.T) {
	const n, folds = 103, 4
	pixels := make([]byte, n)
	labels := make([]uint8, n)
	for i := range n {
		pixels[i] = byte(i) // the single pixel identifies the sample
		labels[i] = uint8(i % 10)
	}
	d, err := mnist.NewSet(&mnist.Images{Count: n, Rows: 1, Cols: 1, Pixels: pixels}, labels)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[byte]int{}
	for fold := range folds {
		train, val := crossValidationSplit(d, folds, fold, 7)
		if train.Count+val.Count != n {
			t.Fatalf("fold %d: %d training + %d validation samples, want %d", fold, train.Count, val.Count, n)
		}
		if val.Count != n/folds && val.Count != n/folds+1 {
			t.Fatalf("fold %d: %d validation samples, want %d or %d", fold, val.Count, n/folds, n/folds+1)
		}
		inVal := map[byte]bool{}
		for i := range val.Count {
			id := val.Image(i)[0]
			if val.Labels[i] != id%10 {
				t.Fatalf("fold %d: sample %d carries label %d", fold, id, val.Labels[i])
			}
			inVal[id] = true
			seen[id]++
		}
		for i := range train.Count {
			if id := train.Image(i)[0]; inVal[id] {
				t.Fatalf("fold %d trains on sample %d, which it validates on", fold, id)
			}
		}
		again, _ := crossValidationSplit(d, folds, fold, 7)
		if string(again.Pixels) != string(train.Pixels) {
			t.Fatalf("fold %d: the split is not a function of the seed", fold)
		}
	}
	if len(seen) != n {
		t.Fatalf("the validation parts cover %d of %d samples", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("sample %d is validated on in %d folds", id, k)
		}
	}
	other, _ := crossValidationSplit(d, folds, 0, 8)
	first, _ := crossValidationSplit(d, folds, 0, 7)
	if string(other.Pixels) == string(first.Pixels) {
		t.Fatal("seeds 7 and 8 give the same split")
	}
}
