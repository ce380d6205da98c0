package worker

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	pb "ringtrain/proto"
)

// TestStopBeforeLossReleases: a Stop queued when the Join stream's end is
// seen releases the worker. The coordinator sends the Stop and returns,
// ending the stream; the reader queues the Stop and sees the end at once,
// and follow, picking between the two, took the loss about half the time
// and waited for a coordinator that was gone (TestResumeAfterAnEpoch...
// in internal/coordinator failed so under load).
func TestStopBeforeLossReleases(t *testing.T) {
	for range 50 {
		w := &worker{log: slog.New(slog.DiscardHandler)}
		s := &session{w: w, instructions: make(chan *pb.Instruction, 16), lost: make(chan struct{})}
		s.instructions <- &pb.Instruction{Kind: &pb.Instruction_Stop{Stop: &pb.Stop{}}}
		s.lostErr = errors.New("lost the coordinator: the coordinator ended the session")
		close(s.lost)
		if err := s.follow(context.Background()); err != nil {
			t.Fatalf("follow: %v, want the Stop to release the worker", err)
		}
		if !w.released {
			t.Fatal("the worker was not released")
		}
	}
}
