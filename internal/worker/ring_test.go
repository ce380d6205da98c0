package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/ringrpc"
	"ringtrain/internal/ringtcp"
	pb "ringtrain/proto"
)

// TestClassifyFailure checks what a failure report says about its error,
// in particular when the coordinator's abort reached a member whose
// collective had just passed its deadline: the report must still name the
// peer it waited for, or the coordinator cannot tell who straggled.
func TestClassifyFailure(t *testing.T) {
	timeout := &allreduce.Error{Step: 20, Phase: "reduce-scatter", Round: 0, Peer: allreduce.Peer{Rank: 1, Addr: "h:1"},
		Dir: "receive from", Received: 2, Waiting: time.Second, Err: context.DeadlineExceeded}
	aborted, abort := context.WithCancelCause(context.Background())
	abort(fmt.Errorf("%w: w-0: the neighbour ended its stream", errAborted))
	for _, c := range []struct {
		name                string
		err                 error
		timedOut, secondary bool
		waiting             time.Duration
	}{
		{"deadline", timeout, true, false, time.Second},
		{"deadline, then the abort", withRingCause(aborted, timeout), true, false, time.Second},
		{"the abort alone", withRingCause(aborted, errors.New("step 20: interrupted")), false, true, 0},
		{"the abort while waiting", withRingCause(aborted, &allreduce.Error{Dir: "receive from", Received: 2, Waiting: 700 * time.Millisecond, Err: context.Cause(aborted)}), false, true, 700 * time.Millisecond},
		{"a broken stream", &allreduce.Error{Dir: "receive from", Received: 2, Waiting: 5 * time.Millisecond, Err: ringrpc.ErrNeighbourGone}, false, true, 5 * time.Millisecond},
		{"the right-hand neighbour left while this rank waited", &allreduce.Error{Dir: "send to", Received: 2, Waiting: 1300 * time.Millisecond, Err: ringrpc.ErrNeighbourGone}, false, true, 1300 * time.Millisecond},
		{"a closed TCP data-plane connection", &allreduce.Error{Dir: "receive from", Received: 2, Waiting: 5 * time.Millisecond, Err: ringtcp.ErrNeighbourGone}, false, true, 5 * time.Millisecond},
		{"an abort frame", &allreduce.Error{Dir: "receive from", Err: fmt.Errorf("rank 2 gave up: %w", allreduce.ErrAborted)}, false, true, 0},
		{"a send past the deadline", &allreduce.Error{Dir: "send to", Err: context.DeadlineExceeded}, false, false, 0},
		{"a corrupt frame", &allreduce.Error{Dir: "receive from", Err: errors.New("failed its CRC-32C check")}, false, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := &pb.WorkerReport{}
			classifyFailure(rep, c.err, 1)
			if rep.TimedOut != c.timedOut || rep.Secondary != c.secondary || time.Duration(rep.WaitingNs) != c.waiting {
				t.Fatalf("%v: timed out %v, secondary %v, waiting %v; want %v, %v, %v", c.err,
					rep.TimedOut, rep.Secondary, time.Duration(rep.WaitingNs), c.timedOut, c.secondary, c.waiting)
			}
			if c.waiting > 0 && (rep.WaitedFor != 1 || rep.FramesReceived != 2) {
				t.Fatalf("%v: waited for %d after %d frames, want rank 1 after 2", c.err, rep.WaitedFor, rep.FramesReceived)
			}
		})
	}
	if err := withRingCause(aborted, timeout); !strings.HasPrefix(err.Error(), "the coordinator aborted the ring") {
		t.Fatalf("%v: want the ring's cause first", err)
	}
	inner := &allreduce.Error{Dir: "receive from", Err: context.Cause(aborted)}
	if err := withRingCause(aborted, inner); err != error(inner) {
		t.Fatalf("%v: the cause, already wrapped, was added again", err)
	}
}
