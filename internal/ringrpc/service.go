// Package ringrpc carries the ring all-reduce over gRPC: every worker serves
// the Ring service, and each rank streams its frames to its right-hand
// neighbour through one long-lived Pass call per ring.
package ringrpc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "ringtrain/proto"
)

// Service implements the Ring service: it accepts the Pass stream of a
// left-hand neighbour and hands it to the local transport of the same job
// and ring generation, whichever of the two arrives first. It is safe for
// concurrent use.
type Service struct {
	pb.UnimplementedRingServer

	// claimTimeout bounds how long an accepted stream waits for its
	// transport.
	claimTimeout time.Duration

	mu struct {
		sync.Mutex
		slots map[slotKey]*slot
	}
}

type slotKey struct {
	job        string
	generation uint32
}

// slot is the meeting point of one ring's inbound stream and its transport.
type slot struct {
	streams chan *inbound
}

// inbound is an accepted Pass stream, waiting to be claimed and then used
// until done is closed.
type inbound struct {
	stream pb.Ring_PassServer
	from   int32
	done   chan struct{}
	once   sync.Once
	err    error // what Pass returns, set before done closes
}

// finish ends the stream's Pass call with err (nil for a normal end).
func (in *inbound) finish(err error) {
	in.once.Do(func() {
		in.err = err
		close(in.done)
	})
}

// NewService returns a Service. An accepted stream that no transport claims
// within claimTimeout is refused.
func NewService(claimTimeout time.Duration) *Service {
	s := &Service{claimTimeout: claimTimeout}
	s.mu.slots = make(map[slotKey]*slot)
	return s
}

// slotLocked returns the slot of key, creating it.
func (s *Service) slotLocked(key slotKey) *slot {
	sl, ok := s.mu.slots[key]
	if !ok {
		sl = &slot{streams: make(chan *inbound, 1)}
		s.mu.slots[key] = sl
	}
	return sl
}

func (s *Service) slot(key slotKey) *slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slotLocked(key)
}

// forget removes the slot of key.
func (s *Service) forget(key slotKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.slots, key)
}

// Pass accepts a left-hand neighbour's stream. The first frame must be a
// hello naming the job, the ring generation and the sender's rank.
func (s *Service) Pass(stream pb.Ring_PassServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHello()
	if h == nil || h.JobId == "" {
		return status.Error(codes.InvalidArgument, "ringrpc: the first frame of a Pass stream must be a hello with a job_id")
	}
	in := &inbound{stream: stream, from: h.FromRank, done: make(chan struct{})}
	key := slotKey{h.JobId, h.Generation}
	select {
	case s.slot(key).streams <- in:
	default:
		return status.Errorf(codes.AlreadyExists, "ringrpc: job %s ring %d already has a left-hand neighbour", quoted(h.JobId), h.Generation)
	}
	timer := time.NewTimer(s.claimTimeout)
	defer timer.Stop()
	select {
	case <-in.done:
		return in.result()
	case <-stream.Context().Done():
		in.finish(nil)
		return stream.Context().Err()
	case <-timer.C:
	}
	// Unclaimed: take the stream back unless a transport got it meanwhile.
	if s.takeBack(key, in) {
		return status.Errorf(codes.FailedPrecondition, "ringrpc: no ring %d of job %s here", h.Generation, quoted(h.JobId))
	}
	select {
	case <-in.done:
		return in.result()
	case <-stream.Context().Done():
		in.finish(nil)
		return stream.Context().Err()
	}
}

// result ends a finished Pass call: with its error, or with a summary for
// a ring closed in good order.
func (in *inbound) result() error {
	if in.err != nil {
		return in.err
	}
	return in.stream.SendAndClose(&pb.PassSummary{})
}

// takeBack removes an unclaimed stream from its slot, and the slot, and
// reports whether it did.
func (s *Service) takeBack(key slotKey, in *inbound) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.mu.slots[key]
	if !ok {
		return false
	}
	select {
	case got := <-sl.streams:
		if got != in {
			sl.streams <- got // not ours: leave it for its transport
			return false
		}
		delete(s.mu.slots, key)
		return true
	default:
		return false
	}
}

// claim waits for the inbound stream of key from rank from.
func (s *Service) claim(ctx context.Context, key slotKey, from int32) (*inbound, error) {
	sl := s.slot(key)
	defer s.forget(key)
	select {
	case in := <-sl.streams:
		if in.from != from {
			err := status.Errorf(codes.PermissionDenied, "ringrpc: rank %d connected, but the left-hand neighbour is rank %d", in.from, from)
			in.finish(err)
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// quoted returns at most the first 64 bytes of a job id a caller sent: an
// error never echoes megabytes of it.
func quoted(jobID string) string {
	if len(jobID) <= 64 {
		return jobID
	}
	return fmt.Sprintf("%s… (%d bytes)", jobID[:64], len(jobID))
}
