package allreduce_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// TestFramesCountsCompletedCollectives: after each collective a rank has
// received 2(N−1) frames a segment of its chunk (here 3 ranks, 3000 values
// in segments of 128: chunks of 1000, 8 segments, 32 frames); a collective
// that fails adds nothing.
func TestFramesCountsCompletedCollectives(t *testing.T) {
	ts := allreduce.NewMemRing(3)
	rings := make([]*allreduce.Ring, len(ts))
	for r, tr := range ts {
		rings[r] = allreduce.New(tr, allreduce.Config{SegmentBytes: 128 * 8})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for step := range uint64(2) {
		var wg sync.WaitGroup
		errs := make([]error, len(rings))
		for r, ring := range rings {
			wg.Go(func() { errs[r] = ring.AllReduce(ctx, step, make([]float64, 3000), allreduce.Sum) })
		}
		wg.Wait()
		for r, err := range errs {
			if err != nil {
				t.Fatalf("rank %d: %v", r, err)
			}
			if got, want := rings[r].Frames(), 32*(step+1); got != want {
				t.Fatalf("rank %d after collective %d: %d frames, want %d", r, step, got, want)
			}
		}
	}
	ts[1].Close()
	if err := rings[0].AllReduce(ctx, 2, make([]float64, 3000), allreduce.Sum); err == nil {
		t.Fatal("a collective succeeded with rank 1 gone")
	}
	if got := rings[0].Frames(); got != 64 {
		t.Fatalf("%d frames after a failed collective, want the 64 of the two before", got)
	}
	for _, tr := range ts {
		tr.Close()
	}
}
