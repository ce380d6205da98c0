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
	members := []*member{{id: "a", rank: 0, addr: "h:1"}, {id: "b", rank: 1, addr: "h:2"}, {id: "c", rank: 2, addr: "h:3"}}
	s := &supervisor{ring: &ring{id: 1, members: members}, hashes: map[uint64]*hashRound{}}
	report := func(rank int32, step uint64, hash uint64) error {
		return c.checkHash(s, &pb.WorkerReport{Rank: rank, Step: step, WeightsHash: hash, HasHash: true})
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
	if err := report(0, 19, 0xabc); err == nil {
		t.Fatal("a second hash from the same rank for the same step was accepted")
	}
	if err := report(2, 19, 0xabc); err != nil {
		t.Fatal(err)
	}
	err := report(1, 19, 0xdef)
	if err == nil || !strings.Contains(err.Error(), "diverged after step 19") ||
		!strings.Contains(err.Error(), "worker a (rank 0") || !strings.Contains(err.Error(), "worker b (rank 1") {
		t.Fatalf("got %v, want divergence naming workers a and b and step 19", err)
	}
}

func TestPlanLanesCoversTheBatch(t *testing.T) {
	for _, c := range []struct{ batch, unit, n int }{{128, 1, 3}, {128, 1, 4}, {96, 4, 5}, {32, 1, 32}, {7, 1, 2}} {
		lanes, err := planLanes(c.batch, c.unit, c.n)
		if err != nil {
			t.Fatal(err)
		}
		next, lo, hi := 0, c.batch, 0
		for _, l := range lanes {
			if l.first != next || l.count%c.unit != 0 || l.count == 0 {
				t.Fatalf("%+v: lanes %v are not contiguous whole units", c, lanes)
			}
			next += l.count
			lo, hi = min(lo, l.count), max(hi, l.count)
		}
		if next != c.batch || hi-lo > c.unit {
			t.Fatalf("%+v: lanes %v do not cover the batch evenly", c, lanes)
		}
	}
	if _, err := planLanes(8, 1, 9); err == nil {
		t.Fatal("nine workers shared eight lanes")
	}
	if _, err := planLanes(96, 5, 2); err == nil {
		t.Fatal("a unit of 5 lanes was accepted for a batch of 96")
	}
}
