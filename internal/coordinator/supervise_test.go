package coordinator

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/control"
	"ringtrain/internal/metrics"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// The ring lifecycle's decisions are tested in package control, scenario
// by scenario; these tests check that the supervisor carries them out:
// instructions, streams, logs, the reporter's records.

// testRing is a coordinator whose ring 1 of members a, b and c has
// applied 10 steps, rank 0 having reported them, driven by dispatching
// events as the supervise loop does.
func testRing(t *testing.T) (*coordinator, *supervisor, map[string]*member) {
	t.Helper()
	c := &coordinator{
		cfg: Config{Cluster: Cluster{Workers: 3, MinWorkers: 1, JoinTimeout: time.Minute}, Job: Job{RingFailures: 3}}, log: quiet, started: time.Now(),
		job:      &pb.JobSpec{JobId: "j", MaxSteps: 100, StepsPerEpoch: 50, GlobalBatch: 96, PerWorkerBatch: 32},
		initial:  &wire.State{Header: &pb.StateHeader{JobId: "j"}},
		registry: newRegistry(), states: newStateStore(), metrics: metrics.NewCoordinator(),
	}
	s := c.newSupervisor()
	byID := map[string]*member{}
	for _, id := range []string{"a", "b", "c"} {
		m, err := c.registry.add(&pb.JoinRequest{WorkerId: id, RingAddr: id + ":1"})
		if err != nil {
			t.Fatal(err)
		}
		byID[id] = m
		step(t, c, s, joined{m})
	}
	for _, id := range []string{"a", "b", "c"} {
		if !assignedTo(byID[id], 1) {
			t.Fatalf("%s was not assigned to ring 1", id)
		}
	}
	step(t, c, s, reported{&pb.WorkerReport{WorkerId: "a", Rank: 0, Generation: 1, Step: 9, Loss: 1, Losses: []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}})
	return c, s, byID
}

// step dispatches one event to the supervisor.
func step(t *testing.T, c *coordinator, s *supervisor, e event) {
	t.Helper()
	if err := c.dispatch(s, e); err != nil {
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

// TestLostMemberIsDroppedAndNotAssigned: a member declared lost is dropped
// (its Join stream ends, so that if it is alive it joins again), forgotten,
// and left out of the next ring, which the survivors are assigned to.
func TestLostMemberIsDroppedAndNotAssigned(t *testing.T) {
	c, s, m := testRing(t)
	step(t, c, s, lost{m["b"], errors.New("gossip: the node failed")})
	step(t, c, s, failedReport(m["b"]))
	step(t, c, s, failedReport(m["a"]))
	step(t, c, s, failedReport(m["c"]))
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
	if m["a"].rank != 0 || m["c"].rank != 1 || m["b"].rank != -1 {
		t.Fatalf("ranks a %d, c %d, b %d; want 0, 1, -1", m["a"].rank, m["c"].rank, m["b"].rank)
	}
	if got := s.rep.history.MembershipChanges; len(got) != 1 || got[0].Kind != "lost" || got[0].Worker != "b" || got[0].Step != 10 {
		t.Fatalf("membership changes %+v, want b lost at step 10", got)
	}
}

// TestNonFiniteStepFailsTheJob: under the stop policy the first member to
// report a non-finite step is sent nothing; once every member has
// reported, the job fails naming the members whose batches were not
// finite.
func TestNonFiniteStepFailsTheJob(t *testing.T) {
	c, s, m := testRing(t)
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
	step(t, c, s, fatal(m["a"], true))
	if s.outcome == nil || s.outcome.Outcome != control.Failed {
		t.Fatalf("outcome %+v, want the job failed", s.outcome)
	}
	if err := c.failure(s.outcome.Err); !strings.Contains(err.Error(), "coordinator: the gradient of step 10 was not finite (NaN or ±Inf) on a, c;") {
		t.Fatalf("got %v, want the job to fail naming a and c", err)
	}
}

// TestFailedRingNamesTheMemberWaitedFor: the first failure report of a
// ring that says its sender was waiting for its left-hand neighbour makes
// the coordinator's log name that neighbour by its id at once.
func TestFailedRingNamesTheMemberWaitedFor(t *testing.T) {
	c, s, m := testRing(t)
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
// for its last step.
func TestBatchedStepReport(t *testing.T) {
	c, s, _ := testRing(t)
	step(t, c, s, reported{&pb.WorkerReport{WorkerId: "a", Rank: 0, Generation: 1, Step: 13, Loss: math.NaN(), Skipped: true,
		Losses: []float64{0.5, 0.25, 0.125, math.NaN()}, ComputeNs: 4e6}})
	h := s.rep.history
	if s.m.Reported() != 14 || h.SkippedSteps != 1 || h.TimedN != 14 || h.Timing.Compute != 4 {
		t.Fatalf("reported %d, skipped %d, timed %v steps (%v ms): want 14, 1, 14 (4 ms)", s.m.Reported(), h.SkippedSteps, h.TimedN, h.Timing.Compute)
	}
	if got := s.rep.losses[10:14]; got[0] != 0.5 || got[1] != 0.25 || got[2] != 0.125 || !math.IsNaN(got[3]) {
		t.Fatalf("losses of steps 10-13: %v", got)
	}
	if h.LastLoss != 0.125 {
		t.Fatalf("last loss %v, want the last applied step's 0.125", h.LastLoss)
	}
}

// TestUnreachableMemberIsLost: a member whose instructions cannot be
// queued is lost like one whose stream broke.
func TestUnreachableMemberIsLost(t *testing.T) {
	c, s, m := testRing(t)
	for len(m["c"].instructions) < cap(m["c"].instructions) {
		m["c"].instructions <- &pb.Instruction{}
	}
	step(t, c, s, lost{m["b"], errors.New("its Join stream ended")})
	if c.registry.get("c") != nil {
		t.Fatal("a member that cannot take its abort is still registered")
	}
	if got := s.rep.history.MembershipChanges; len(got) != 2 || got[1].Worker != "c" || !strings.Contains(got[1].Cause, "not reading its instructions") {
		t.Fatalf("membership changes %+v, want c lost for not reading its instructions", got)
	}
}
