package coordinator

import (
	"strings"
	"testing"

	pb "ringtrain/proto"
)

// TestDivergedReplicasNameWorkersAndStep feeds the supervisor weight hashes
// that disagree: the job must fail naming both workers and the step.
func TestDivergedReplicasNameWorkersAndStep(t *testing.T) {
	c := &coordinator{job: &pb.JobSpec{MaxSteps: 100, StepsPerEpoch: 50}}
	s := &supervisor{
		ranked: []*member{{id: "a", rank: 0, addr: "h:1"}, {id: "b", rank: 1, addr: "h:2"}, {id: "c", rank: 2, addr: "h:3"}},
		hashes: map[uint64]*hashRound{}, finished: make([]bool, 3),
		epochLoss: make([]float64, 2), epochSteps: make([]int, 2), epochs: make([]EpochMetrics, 2),
		progress: newProgress(nil, c.job, 96),
	}
	report := func(rank int32, step uint64, hash uint64) error {
		return c.report(s, &pb.WorkerReport{Rank: rank, Step: step, WeightsHash: hash, HasHash: true})
	}
	for rank := int32(0); rank < 3; rank++ {
		if err := report(rank, 9, 0xabc); err != nil {
			t.Fatal(err)
		}
	}
	if s.replicaChecks != 1 {
		t.Fatalf("%d replica checks, want 1", s.replicaChecks)
	}
	if err := report(0, 19, 0xabc); err != nil {
		t.Fatal(err)
	}
	if err := report(2, 19, 0xabc); err != nil {
		t.Fatal(err)
	}
	err := report(1, 19, 0xdef)
	if err == nil || !strings.Contains(err.Error(), "diverged after step 19") ||
		!strings.Contains(err.Error(), "worker a (rank 0") || !strings.Contains(err.Error(), "worker b (rank 1") {
		t.Fatalf("got %v, want divergence naming workers a and b and step 19", err)
	}
	if err := report(0, 9, 1); err == nil {
		t.Fatal("a second hash for a checked step was accepted")
	}
}
