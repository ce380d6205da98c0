package worker

import (
	"slices"
	"testing"
	"testing/synctest"

	pb "ringtrain/proto"
)

// TestStepReportsBatch: rank 0's step reports wait until one must go at
// once, then go as one report covering every step since the last (their
// losses in order, their times added up); a full batch goes by itself.
//
// It runs in a synctest bubble, where time stands still while the test
// does not block: reportEvery can never fall due between two adds, however
// slowly a loaded machine runs it.
func TestStepReportsBatch(t *testing.T) {
	synctest.Test(t, testStepReportsBatch)
}

func testStepReportsBatch(t *testing.T) {
	var sent []*pb.WorkerReport
	b := stepReports{send: func(r *pb.WorkerReport) { sent = append(sent, r) }}
	for step := range uint64(3) {
		b.add(&pb.WorkerReport{Step: step, Loss: float64(step), ComputeNs: 10}, step == 2)
	}
	if len(sent) != 1 {
		t.Fatalf("%d reports sent for 3 steps, the last urgent: want 1", len(sent))
	}
	if r := sent[0]; r.Step != 2 || !slices.Equal(r.Losses, []float64{0, 1, 2}) || r.ComputeNs != 30 {
		t.Fatalf("report of step %d, losses %v, compute %d ns: want step 2, [0 1 2], 30 ns", r.Step, r.Losses, r.ComputeNs)
	}
	b.flush()
	if len(sent) != 1 {
		t.Fatal("an empty batch was sent")
	}
	for step := range uint64(reportMaxSteps + 1) {
		b.add(&pb.WorkerReport{Step: 3 + step}, false)
	}
	if len(sent) != 2 || len(sent[1].Losses) != reportMaxSteps {
		t.Fatalf("%d reports; want the full batch of %d steps sent by itself", len(sent), reportMaxSteps)
	}
	b.flush()
	if len(sent) != 3 || !slices.Equal(sent[2].Losses, []float64{0}) {
		t.Fatal("flush did not send the step left pending")
	}
}
