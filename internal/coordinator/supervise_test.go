package coordinator

import (
	"strings"
	"testing"
	"time"

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
	if s.history.ReplicaChecks != 1 {
		t.Fatalf("%d replica checks, want 1", s.history.ReplicaChecks)
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

// TestStragglerAttribution feeds failure reports of a ring of four (a, b,
// c, d; each waits for its left-hand neighbour) and checks who is named.
func TestStragglerAttribution(t *testing.T) {
	members := []*member{{id: "a", addr: "h:1"}, {id: "b", addr: "h:2"}, {id: "c", addr: "h:3"}, {id: "d", addr: "h:4"}}
	t0 := time.Now()
	type rep struct {
		rank     int32
		applied  uint64
		frames   uint32
		waiting  bool // it was waiting for its left-hand neighbour
		timedOut bool
		afterMs  int
	}
	for _, c := range []struct {
		name string
		reps []rep
		want string
	}{
		{"the fewest frames starved first", []rep{{rank: 3, applied: 7, frames: 2, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 3, waiting: true, afterMs: 2}, {rank: 2, applied: 7, frames: 1, waiting: true, afterMs: 3}}, "b"},
		{"a witness the abort reached counts", []rep{{rank: 3, applied: 7, frames: 2, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 3, waiting: true, afterMs: 2}, {rank: 2, applied: 7, frames: 1, waiting: true, afterMs: 520}}, "b"},
		{"an earlier step beats fewer frames", []rep{{rank: 1, applied: 8, frames: 0, waiting: true, timedOut: true}, {rank: 2, applied: 7, frames: 5, waiting: true, afterMs: 1}}, "b"},
		{"a late report is no witness", []rep{{rank: 3, applied: 7, frames: 1, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 2, waiting: true, afterMs: 2}, {rank: 2, applied: 7, frames: 0, waiting: true, timedOut: true, afterMs: 2000}}, "c"},
		{"a member not waiting is no witness", []rep{{rank: 2, applied: 7, frames: 0, timedOut: true}, {rank: 0, applied: 7, frames: 3, waiting: true, afterMs: 1}}, "d"},
		{"a neighbour ahead, its frames lost, beats fewer frames", []rep{{rank: 2, applied: 7, frames: 3, waiting: true, timedOut: true}, {rank: 0, applied: 8, frames: 0, waiting: true, afterMs: 2}, {rank: 3, applied: 7, frames: 3, waiting: true, afterMs: 2}, {rank: 1, applied: 7, frames: 3, waiting: true, timedOut: true, afterMs: 3}}, "a"},
		{"a silent neighbour beats fewer frames", []rep{{rank: 3, applied: 7, frames: 2, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 1, waiting: true, afterMs: 2}}, "c"},
		{"ties go to the first report", []rep{{rank: 2, applied: 7, frames: 1, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 1, waiting: true, afterMs: 3}}, "b"},
		{"no deadline, no straggler", []rep{{rank: 2, applied: 7, frames: 1, waiting: true}, {rank: 3, applied: 7, frames: 2, waiting: true}}, ""},
		{"no report, no straggler", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &ring{id: 1, members: members}
			for _, x := range c.reps {
				wr := &pb.WorkerReport{Rank: x.rank, WorkerId: members[x.rank].id, Applied: x.applied, Status: pb.ReportStatus_FAILED,
					TimedOut: x.timedOut, FramesReceived: x.frames, WaitedFor: (x.rank + 3) % 4}
				if x.waiting {
					wr.WaitingNs = uint64(time.Second)
				}
				r.failures = append(r.failures, failureReport{wr, t0.Add(time.Duration(x.afterMs) * time.Millisecond)})
			}
			slow, cause := straggler(r)
			got := ""
			if slow != nil {
				got = slow.id
			}
			if got != c.want {
				t.Fatalf("straggler %q (%s), want %q", got, cause, c.want)
			}
		})
	}
}
