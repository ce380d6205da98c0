package coordinator

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// service implements the Coordinator gRPC service. Its handlers validate
// what arrives, answer from the job's immutable parts and hand everything
// else to the supervise loop as events.
type service struct {
	pb.UnimplementedCoordinatorServer
	c *coordinator
}

// joinStarted counts a new Join handler, unless the job is ending; then
// it returns the job's Stop if the job is over for good.
func (c *coordinator) joinStarted() (bool, *pb.Stop) {
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	if c.ending {
		return false, c.over
	}
	c.joins.Add(1)
	return true, nil
}

// post hands an event to the supervise loop unless the job has ended.
func (c *coordinator) post(e event) bool {
	select {
	case c.events <- e:
		return true
	case <-c.done:
		return false
	}
}

// errStreamEnded is why a worker is lost when its Join stream ends.
var errStreamEnded = errors.New("its Join stream ended (the process exited or the connection broke)")

func (s *service) Join(req *pb.JoinRequest, stream pb.Coordinator_JoinServer) error {
	c := s.c
	switch {
	case req.WorkerId == "" || len(req.WorkerId) > maxWorkerID:
		return status.Errorf(codes.InvalidArgument, "coordinator: join: worker_id must have 1 to %d bytes", maxWorkerID)
	case req.RingAddr == "" || len(req.RingAddr) > maxRingAddr:
		return status.Errorf(codes.InvalidArgument, "coordinator: join: ring_addr must have 1 to %d bytes", maxRingAddr)
	case len(req.Hostname) > maxHostname:
		return status.Errorf(codes.InvalidArgument, "coordinator: join: hostname has more than %d bytes", maxHostname)
	}
	if ok, over := c.joinStarted(); !ok {
		if over != nil {
			// A worker that missed its Stop (its ring failed as the job
			// ended, and it came back) gets the same one, and leaves,
			// instead of retrying until its launcher kills it.
			return stream.Send(&pb.Instruction{Kind: &pb.Instruction_Stop{Stop: over}})
		}
		return status.Error(codes.Unavailable, "coordinator: the job is ending")
	}
	defer c.joins.Done()
	m, err := c.registry.add(req)
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "coordinator: join: %v", err)
	}
	defer m.ended.Store(true)
	if !c.post(joined{m}) {
		return status.Error(codes.Unavailable, "coordinator: the job has ended")
	}
	// The credential comes first: the worker needs it for every other call.
	welcome := &pb.Instruction{Kind: &pb.Instruction_Welcome{Welcome: &pb.Welcome{Credential: c.members.Issue(m.id)}}}
	if err := stream.Send(welcome); err != nil {
		m.ended.Store(true)
		c.post(lost{m, err})
		return err
	}
	for {
		select {
		case in := <-m.instructions:
			if a := in.GetAssignment(); a != nil {
				// Recorded before the worker can act on it.
				c.assigned.record(m.id, a)
			}
			if err := stream.Send(in); err != nil {
				m.ended.Store(true)
				c.post(lost{m, err})
				return err
			}
			if in.GetStop() != nil {
				return nil
			}
		case <-stream.Context().Done():
			m.ended.Store(true)
			c.post(lost{m, errStreamEnded})
			return stream.Context().Err()
		case <-m.dropped:
			return status.Errorf(codes.Aborted, "coordinator: this worker was dropped from the job (%v); join again", m.dropCause)
		case <-c.done:
			return status.Error(codes.Unavailable, "coordinator: the job has ended")
		}
	}
}

// checkJob validates a request's job id. The error does not tell the real
// one.
func (c *coordinator) checkJob(jobID string) error {
	if jobID != c.job.JobId {
		return status.Errorf(codes.InvalidArgument, "coordinator: job_id %q is not this job's", prefix(jobID))
	}
	return nil
}

func (s *service) FetchShard(req *pb.ShardRequest, stream pb.Coordinator_FetchShardServer) error {
	c := s.c
	if _, err := c.caller(stream.Context()); err != nil {
		return err
	}
	if err := c.checkJob(req.JobId); err != nil {
		return err
	}
	if req.LaneCount < 1 || uint64(req.FirstLane)+uint64(req.LaneCount) > uint64(c.job.GlobalBatch) {
		return status.Errorf(codes.InvalidArgument, "coordinator: fetch shard: lanes %d+%d outside the global batch of %d",
			req.FirstLane, req.LaneCount, c.job.GlobalBatch)
	}
	return wire.SendShard(stream.Send, c.train, c.plan.Range(int(req.FirstLane), int(req.LaneCount)))
}

func (s *service) FetchState(req *pb.StateRequest, stream pb.Coordinator_FetchStateServer) error {
	c := s.c
	if _, err := c.caller(stream.Context()); err != nil {
		return err
	}
	if err := c.checkJob(req.JobId); err != nil {
		return err
	}
	st, err := c.states.wait(stream.Context(), req.Generation, c.done)
	if err != nil {
		return status.Errorf(codes.Unavailable, "coordinator: fetch state of ring %d: %v", req.Generation, err)
	}
	return wire.SendState(stream.Send, &wire.State{Header: &pb.StateHeader{JobId: c.job.JobId, Step: st.Header.Step,
		Generation: req.Generation, FixedPointBits: st.Header.FixedPointBits}, Params: st.Params, Opt: st.Opt})
}

// Report accepts reports about the calling worker only: a report that names
// another is refused, and never reaches the supervisor (which would treat
// the worker it names as misbehaving).
func (s *service) Report(stream pb.Coordinator_ReportServer) error {
	c := s.c
	id, err := c.caller(stream.Context())
	if err != nil {
		return err
	}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&pb.ReportAck{})
		}
		if err != nil {
			return err
		}
		if r.WorkerId != id {
			c.log.Warn("refused a report about another worker", "from", id, "about", prefix(r.WorkerId))
			return status.Errorf(codes.PermissionDenied, "coordinator: report: worker %q cannot report for worker %q", id, prefix(r.WorkerId))
		}
		if err := c.checkReport(r); err != nil {
			c.log.Warn("rejected a report", "worker", r.WorkerId, "err", err)
			return status.Errorf(codes.InvalidArgument, "coordinator: report: %v", err)
		}
		if !c.post(reported{r}) {
			return status.Error(codes.Unavailable, "coordinator: the job has ended")
		}
	}
}

// UploadState accepts a state from the worker that holds the rank and
// ring it names.
func (s *service) UploadState(stream pb.Coordinator_UploadStateServer) error {
	c := s.c
	id, err := c.caller(stream.Context())
	if err != nil {
		return err
	}
	st, err := wire.ReceiveState(stream.Recv, uint64(c.numParams))
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: %v", err)
	}
	if err := c.checkUpload(st.Header, len(st.Params), len(st.Opt.Slots)); err != nil {
		return err
	}
	if h := st.Header; !c.assigned.holds(id, h.Generation, h.Rank) {
		return errNotYours("upload", id, h.Generation, h.Rank)
	}
	if h := st.Header; h.Base && !c.assigned.uploadsBase(id, h.Generation, h.Step) {
		// Only the member told to may set the state the others of its
		// ring fetch: another could hand them a state of its own.
		return status.Errorf(codes.PermissionDenied, "coordinator: upload: worker %q was not asked for ring %d's start state after %d steps", id, h.Generation, h.Step)
	}
	if !c.post(uploaded{st}) {
		return status.Error(codes.Unavailable, "coordinator: the job has ended")
	}
	return stream.SendAndClose(&pb.UploadAck{})
}

// checkUpload validates an upload's header: a full state at a step of the
// job, from rank 0 except for a new ring's starting state, with flags that
// match its step.
func (c *coordinator) checkUpload(h *pb.StateHeader, params, slots int) error {
	spe, steps := c.job.StepsPerEpoch, c.job.MaxSteps
	switch {
	case h.JobId != c.job.JobId:
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: job_id %q is not this job", prefix(h.JobId))
	case params != c.numParams || slots != c.numSlots:
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: %d parameters and %d optimizer slots; the model has %d and %d",
			params, slots, c.numParams, c.numSlots)
	case h.Step > steps:
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: step %d beyond the job's %d steps", h.Step, steps)
	case h.Base:
		return nil
	case h.Rank != 0:
		return status.Errorf(codes.PermissionDenied, "coordinator: upload: only rank 0 uploads checkpoints, not rank %d", h.Rank)
	case h.Step == 0 || uint64(h.Epoch) != (h.Step-1)/spe:
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: epoch %d does not contain step %d", h.Epoch, h.Step)
	case h.EpochEnd != (h.Step%spe == 0):
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: epoch_end %v at step %d", h.EpochEnd, h.Step)
	case h.Final != (h.Step == steps):
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: final %v at step %d of %d", h.Final, h.Step, steps)
	case !h.EpochEnd && !h.Final && !h.Checkpoint:
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: step %d is neither a checkpoint, an epoch's end nor the job's", h.Step)
	}
	return nil
}

// maxTraceEvents bounds what one worker may upload as its timeline.
const maxTraceEvents = 4_000_000

func (s *service) UploadTrace(stream pb.Coordinator_UploadTraceServer) error {
	c := s.c
	id, err := c.caller(stream.Context())
	if err != nil {
		return err
	}
	if !c.job.Trace {
		return status.Error(codes.FailedPrecondition, "coordinator: upload trace: this job records no trace")
	}
	p, placed := c.assigned.placed(id)
	tr := traced{ring: p.ring, rank: -1}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := c.checkJob(chunk.JobId); err != nil {
			return err
		}
		if chunk.Rank < 0 || uint32(chunk.Rank) >= uint32(maxRegistered) || (tr.rank >= 0 && chunk.Rank != tr.rank) {
			return status.Errorf(codes.InvalidArgument, "coordinator: upload trace: rank %d", chunk.Rank)
		}
		if !placed || chunk.Rank != p.rank {
			return status.Errorf(codes.PermissionDenied, "coordinator: upload trace: worker %q does not hold rank %d", id, chunk.Rank)
		}
		tr.rank, tr.dropped = chunk.Rank, chunk.Dropped
		if len(tr.events)+len(chunk.Events) > maxTraceEvents {
			return status.Errorf(codes.ResourceExhausted, "coordinator: upload trace: more than %d events", maxTraceEvents)
		}
		for _, e := range chunk.Events {
			if e.DurNs < 0 || e.Step >= c.job.MaxSteps {
				return status.Errorf(codes.InvalidArgument, "coordinator: upload trace: event %q of step %d lasting %dns", prefix(e.Name), e.Step, e.DurNs)
			}
		}
		tr.events = append(tr.events, chunk.Events...)
	}
	if tr.rank < 0 {
		return status.Error(codes.InvalidArgument, "coordinator: upload trace: empty stream")
	}
	if !c.post(tr) {
		return status.Error(codes.Unavailable, "coordinator: the job has ended")
	}
	return stream.SendAndClose(&pb.UploadAck{})
}

// checkReport validates the fields of a report that do not depend on the
// job's progress; the supervisor checks the others.
func (c *coordinator) checkReport(r *pb.WorkerReport) error {
	switch {
	case r.Status < pb.ReportStatus_STEP || r.Status > pb.ReportStatus_FAILED:
		return fmt.Errorf("status: %d is not a report status", r.Status)
	case len(r.Error) > 64<<10:
		return fmt.Errorf("error: %d bytes, at most 64 KiB", len(r.Error))
	case r.Rank < 0 || r.Rank >= maxRegistered:
		return fmt.Errorf("rank: %d outside 0 to %d", r.Rank, maxRegistered-1)
	case r.Step >= c.job.MaxSteps:
		return fmt.Errorf("step: %d, the job has %d steps", r.Step, c.job.MaxSteps)
	case r.Applied > c.job.MaxSteps:
		return fmt.Errorf("applied: %d, the job has %d steps", r.Applied, c.job.MaxSteps)
	case r.Epoch >= uint32(c.epochs()):
		return fmt.Errorf("epoch: %d, the job has %d epochs", r.Epoch, c.epochs())
	case math.IsNaN(r.Loss) && !r.Skipped:
		return errors.New("loss: NaN for a step applied")
	case uint64(len(r.Losses)) > r.Step+1:
		return fmt.Errorf("losses: %d for steps up to %d", len(r.Losses), r.Step)
	case len(r.Losses) > 0 && r.Losses[len(r.Losses)-1] != r.Loss && !(math.IsNaN(r.Loss) && math.IsNaN(r.Losses[len(r.Losses)-1])):
		return errors.New("losses: the last is not the step's loss")
	case len(r.Losses) > 1 && slices.ContainsFunc(r.Losses[:len(r.Losses)-1], math.IsNaN):
		return errors.New("losses: NaN for a step applied")
	}
	return nil
}
