package coordinator

import (
	"errors"
	"testing"
	"time"

	"ringtrain/internal/control"
	"ringtrain/internal/metrics"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// TestJoinWaitIsTimedFromTheSupervisor: a job that gives up waiting for
// its workers says how long it waited for them, not how long ago the
// coordinator was built (reading checkpoints, starting its servers and
// local workers come before the wait).
func TestJoinWaitIsTimedFromTheSupervisor(t *testing.T) {
	c := &coordinator{
		cfg: Config{Cluster: Cluster{Workers: 3, MinWorkers: 1, JoinTimeout: time.Minute}, Job: Job{RingFailures: 3}}, log: quiet,
		started:  time.Now().Add(-10 * time.Minute),
		job:      &pb.JobSpec{JobId: "j", MaxSteps: 100, StepsPerEpoch: 50, GlobalBatch: 96, PerWorkerBatch: 32},
		initial:  &wire.State{Header: &pb.StateHeader{JobId: "j"}},
		registry: newRegistry(), states: newStateStore(), metrics: metrics.NewCoordinator(),
	}
	s := c.newSupervisor()
	if err := c.handle(s, control.Fired{Timer: control.JoinTimer}); err != nil {
		t.Fatal(err)
	}
	var few *control.TooFewWorkers
	if s.outcome == nil || !errors.As(s.outcome.Err, &few) || few.Waited > time.Minute {
		t.Fatalf("outcome %+v: want the wait of about no time the supervisor waited", s.outcome)
	}
}
