package sampler

import (
	"slices"
	"testing"
)

func TestPlanCoversEverySampleOnce(t *testing.T) {
	p, err := NewPlan(1000, 64, 7)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, 1000)
	for l := 0; l < p.GlobalBatch(); l++ {
		for _, id := range p.Lane(l) {
			seen[id]++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("sample %d is in %d lanes", id, n)
		}
	}
	if got := p.StepsPerEpoch(); got != 1000/64 {
		t.Fatalf("steps per epoch %d, want %d", got, 1000/64)
	}
}

// TestBatchesIndependentOfWorkers checks that the workers' shares of every
// global batch, concatenated in rank order, are the single-process batch.
func TestBatchesIndependentOfWorkers(t *testing.T) {
	const n, B = 600, 24
	p, err := NewPlan(n, B, 42)
	if err != nil {
		t.Fatal(err)
	}
	for epoch := 0; epoch < 3; epoch++ {
		whole := p.Range(0, B).Epoch(epoch)
		for _, workers := range []int{2, 3, 4, 8} {
			b := B / workers
			eps := make([]*Epoch, workers)
			for r := range eps {
				eps[r] = p.Range(r*b, b).Epoch(epoch)
			}
			for step := 0; step < p.StepsPerEpoch(); step++ {
				want := whole.Batch(step, nil)
				var got []int
				for _, e := range eps {
					got = e.Batch(step, got)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("epoch %d step %d with %d workers: %v, want %v", epoch, step, workers, got, want)
				}
			}
		}
	}
}

func TestEpochsVisitSamplesOnceAndDiffer(t *testing.T) {
	p, err := NewPlan(100, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	var first []int
	for epoch := 0; epoch < 2; epoch++ {
		e := p.Range(0, 10).Epoch(epoch)
		var all []int
		for step := 0; step < p.StepsPerEpoch(); step++ {
			all = e.Batch(step, all)
		}
		sorted := slices.Sorted(slices.Values(all))
		for i, id := range sorted {
			if id != i {
				t.Fatalf("epoch %d does not visit every sample once", epoch)
			}
		}
		if epoch == 0 {
			first = all
		} else if slices.Equal(first, all) {
			t.Fatal("epochs 0 and 1 visit the samples in the same order")
		}
	}
}

func TestNewPlanRejectsBadBatch(t *testing.T) {
	if _, err := NewPlan(10, 0, 1); err == nil {
		t.Fatal("batch 0 accepted")
	}
	if _, err := NewPlan(10, 11, 1); err == nil {
		t.Fatal("batch larger than the data accepted")
	}
}
