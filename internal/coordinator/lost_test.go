package coordinator

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/metrics"
	pb "ringtrain/proto"
)

// lostTestRing is a coordinator whose ring 1 of members a, b and c has
// applied 10 steps, driven by calling handle and advance as the supervise
// loop does.
func lostTestRing(t *testing.T) (*coordinator, *supervisor, map[string]*member) {
	t.Helper()
	c := &coordinator{
		cfg: Config{Workers: 3, MinWorkers: 1, RingFailures: 3}, log: quiet, started: time.Now(),
		job:      &pb.JobSpec{JobId: "j", MaxSteps: 100, StepsPerEpoch: 50, GlobalBatch: 96, PerWorkerBatch: 32},
		registry: newRegistry(), states: newStateStore(), metrics: metrics.NewCoordinator(),
	}
	s := &supervisor{progress: newProgress(nil, c.job, 96, "test"), hashes: map[uint64]*hashRound{}, finished: map[*member]bool{},
		history: newHistory(2), losses: make([]float64, 100), committed: 0, reported: 10, genSeq: 1}
	byID := map[string]*member{}
	var members []*member
	for _, id := range []string{"a", "b", "c"} {
		m, err := c.registry.add(&pb.JoinRequest{WorkerId: id, RingAddr: id + ":1"})
		if err != nil {
			t.Fatal(err)
		}
		m.rank = len(members)
		members, byID[id] = append(members, m), m
	}
	lanes, err := planLanes(96, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	s.ring = &ring{id: 1, members: members, lanes: lanes, outcomes: map[*member]*pb.WorkerReport{}, gone: map[*member]error{}, failedChange: -1}
	return c, s, byID
}

// step feeds one event to the supervisor and advances it.
func step(t *testing.T, c *coordinator, s *supervisor, e event) {
	t.Helper()
	if err := c.handle(s, e); err != nil {
		t.Fatal(err)
	}
	if err := c.advance(s); err != nil {
		t.Fatal(err)
	}
}

func failedReport(m *member) reported {
	return reported{&pb.WorkerReport{WorkerId: m.id, Rank: int32(m.rank), Generation: 1, Status: pb.ReportStatus_FAILED, Applied: 10, Error: "broken"}}
}

// assignedTo reports whether m was given a place in ring gen.
func assignedTo(m *member, gen uint32) bool {
	for {
		select {
		case in := <-m.instructions:
			if a := in.GetAssignment(); a != nil && a.Generation == gen {
				return true
			}
		default:
			return false
		}
	}
}

// TestLostMemberThatReportsIsNotASurvivor: a member declared lost whose
// failure report still arrives (before or after it was declared lost) is
// counted once, as gone. The ring waits for the other members' reports,
// the next ring is formed without the lost member, and the lost member's
// Join stream is ended so that, if it is alive, it joins again instead of
// waiting for instructions that never come. (It used to be counted both as
// gone and as reported: the ring ended before the last member reported,
// and the lost member was given a place in the next ring though it was no
// longer registered, so no Stop ever reached it.)
func TestLostMemberThatReportsIsNotASurvivor(t *testing.T) {
	for _, order := range []string{"lost-then-report", "report-then-lost"} {
		t.Run(order, func(t *testing.T) {
			c, s, m := lostTestRing(t)
			lost := lost{m["b"], errors.New("gossip: the node failed")}
			if order == "lost-then-report" {
				step(t, c, s, lost)
				step(t, c, s, failedReport(m["b"]))
			} else {
				step(t, c, s, failedReport(m["b"]))
				step(t, c, s, lost)
			}
			step(t, c, s, failedReport(m["a"]))
			if s.ring.id != 1 {
				t.Fatalf("ring %d formed before c reported how ring 1 ended", s.ring.id)
			}
			step(t, c, s, failedReport(m["c"]))
			if s.ring.id != 2 {
				t.Fatalf("no new ring once every member reported or was lost (ring %d)", s.ring.id)
			}
			var ids []string
			for _, x := range s.ring.members {
				ids = append(ids, x.id)
			}
			if len(ids) != 2 || ids[0] != "a" || ids[1] != "c" {
				t.Fatalf("ring 2 is %v, want [a c]", ids)
			}
			if assignedTo(m["b"], 2) {
				t.Fatal("the lost member was assigned to ring 2")
			}
			if !assignedTo(m["a"], 2) || !assignedTo(m["c"], 2) {
				t.Fatal("a survivor was not assigned to ring 2")
			}
			select {
			case <-m["b"].dropped:
			default:
				t.Fatal("the lost member's Join stream was not ended")
			}
			if c.registry.get("b") != nil {
				t.Fatal("the lost member is still registered")
			}
		})
	}
}

// TestNonFiniteStepWaitsForEveryMember: under the stop policy the first
// member to report a non-finite step does not abort the others (each stops
// at that step by itself, and an abort could cut one short before it knows
// whether its own batch was at fault); the job fails once every member has
// reported, naming exactly the members whose batches were not finite.
func TestNonFiniteStepWaitsForEveryMember(t *testing.T) {
	c, s, m := lostTestRing(t)
	fatal := func(x *member, here bool) reported {
		return reported{&pb.WorkerReport{WorkerId: x.id, Rank: int32(x.rank), Generation: 1, Status: pb.ReportStatus_FAILED,
			Applied: 10, Step: 10, Fatal: true, NonfiniteHere: here, Error: "non-finite gradient"}}
	}
	step(t, c, s, fatal(m["c"], true))
	for _, id := range []string{"a", "b"} {
		select {
		case in := <-m[id].instructions:
			t.Fatalf("%s was sent %v after the first non-finite report", id, in)
		default:
		}
	}
	step(t, c, s, fatal(m["b"], false))
	if err := c.handle(s, fatal(m["a"], true)); err != nil {
		t.Fatal(err)
	}
	err := c.advance(s)
	if err == nil || !strings.Contains(err.Error(), "gradient of step 10 was not finite (NaN or ±Inf) on a, c;") {
		t.Fatalf("got %v, want the job to fail naming a and c", err)
	}
}

// TestFailedRingNamesTheMemberWaitedFor: the first failure report of a
// ring that says its sender was waiting for its left-hand neighbour makes
// the coordinator's log name that neighbour by its id at once, not only
// by the rank and address in the worker's error (a partitioned worker is
// named within the all-reduce timeout, before gossip or the ring's end).
func TestFailedRingNamesTheMemberWaitedFor(t *testing.T) {
	c, s, m := lostTestRing(t)
	var out strings.Builder
	c.log = slog.New(slog.NewJSONHandler(&out, nil))
	step(t, c, s, reported{&pb.WorkerReport{WorkerId: "c", Rank: 2, Generation: 1, Status: pb.ReportStatus_FAILED, Applied: 10,
		TimedOut: true, WaitingNs: uint64(3 * time.Second), WaitedFor: int32(m["b"].rank), Error: "receive from rank 1 (b:1): context deadline exceeded"}})
	if !strings.Contains(out.String(), `"msg":"ring failed","ring":1,"worker":"c","waiting_for":"b"`) {
		t.Fatalf("log %s: want the ring's failure to name b, the member c waited for", out.String())
	}
}

// TestBatchedStepReport: one report of rank 0 covering several steps
// records each step's loss, counts the steps' times, and counts a skip only
// for its last step; a report covering steps before its ring's start is
// rejected.
func TestBatchedStepReport(t *testing.T) {
	c, s, m := lostTestRing(t)
	s.ring.start, s.reported = 10, 10
	for i := range s.losses {
		s.losses[i] = math.NaN()
	}
	step(t, c, s, reported{&pb.WorkerReport{WorkerId: "a", Rank: 0, Generation: 1, Step: 13, Loss: math.NaN(), Skipped: true,
		Losses: []float64{0.5, 0.25, 0.125, math.NaN()}, ComputeNs: 4e6}})
	if s.reported != 14 || s.history.SkippedSteps != 1 || s.history.TimedN != 4 || s.history.Timing.Compute != 4 {
		t.Fatalf("reported %d, skipped %d, timed %v steps (%v ms): want 14, 1, 4 (4 ms)", s.reported, s.history.SkippedSteps, s.history.TimedN, s.history.Timing.Compute)
	}
	if got := s.losses[10:14]; got[0] != 0.5 || got[1] != 0.25 || got[2] != 0.125 || !math.IsNaN(got[3]) {
		t.Fatalf("losses of steps 10-13: %v", got)
	}
	if s.history.LastLoss != 0.125 {
		t.Fatalf("last loss %v, want the last applied step's 0.125", s.history.LastLoss)
	}
	// Steps 8 and 9 belong to an earlier ring: the report is rejected
	// and its sender, which cannot be trusted, is lost.
	step(t, c, s, reported{&pb.WorkerReport{WorkerId: "b", Rank: 1, Generation: 1, Step: 10, Loss: 1, Losses: []float64{1, 1, 1}}})
	if _, gone := s.ring.gone[m["b"]]; !gone {
		t.Fatal("a report reaching back before its ring's start was accepted")
	}
}
