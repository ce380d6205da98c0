package coordinator

import (
	"errors"
	"io"

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

// joinStarted counts a new Join handler, unless the job is ending.
func (c *coordinator) joinStarted() bool {
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	if c.ending {
		return false
	}
	c.joins.Add(1)
	return true
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

func (s *service) Join(req *pb.JoinRequest, stream pb.Coordinator_JoinServer) error {
	c := s.c
	switch {
	case req.WorkerId == "":
		return status.Error(codes.InvalidArgument, "coordinator: join: worker_id is required")
	case req.RingAddr == "":
		return status.Error(codes.InvalidArgument, "coordinator: join: ring_addr is required")
	}
	if !c.joinStarted() {
		return status.Error(codes.Unavailable, "coordinator: the job is ending")
	}
	defer c.joins.Done()
	m, err := c.members.add(req)
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "coordinator: join: %v", err)
	}
	c.log.Info("worker joined", "worker", m.id, "ring_addr", m.addr, "host", m.host, "pid", m.pid)
	if !c.post(joined{m}) {
		return status.Error(codes.Unavailable, "coordinator: the job has ended")
	}
	for {
		select {
		case in := <-m.instructions:
			if err := stream.Send(in); err != nil {
				c.post(lost{m, err})
				return err
			}
			if in.GetStop() != nil {
				return nil
			}
		case <-stream.Context().Done():
			c.post(lost{m, errStreamEnded})
			return stream.Context().Err()
		case <-c.done:
			return status.Error(codes.Unavailable, "coordinator: the job has ended")
		}
	}
}

// errStreamEnded is why a worker is lost when its Join stream ends.
var errStreamEnded = errors.New("its Join stream ended (the process exited or the connection broke)")

// checkJob validates the job id and rank of a request.
func (c *coordinator) checkJob(jobID string, rank int32) (*member, error) {
	if jobID != c.job.JobId {
		return nil, status.Errorf(codes.InvalidArgument, "coordinator: job_id %q is not this job (%s)", jobID, c.job.JobId)
	}
	m := c.members.byRank(rank)
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument, "coordinator: rank %d is not assigned in this job of %d workers", rank, c.job.WorldSize)
	}
	return m, nil
}

func (s *service) FetchShard(req *pb.ShardRequest, stream pb.Coordinator_FetchShardServer) error {
	c := s.c
	if _, err := c.checkJob(req.JobId, req.Rank); err != nil {
		return err
	}
	b := int(c.job.PerWorkerBatch)
	return wire.SendShard(stream.Send, c.train, c.plan.Range(int(req.Rank)*b, b))
}

func (s *service) FetchState(req *pb.StateRequest, stream pb.Coordinator_FetchStateServer) error {
	c := s.c
	if req.JobId != c.job.JobId {
		return status.Errorf(codes.InvalidArgument, "coordinator: job_id %q is not this job", req.JobId)
	}
	return wire.SendState(stream.Send, &wire.State{Header: &pb.StateHeader{JobId: c.job.JobId}, Params: c.initParams})
}

func (s *service) Report(stream pb.Coordinator_ReportServer) error {
	c := s.c
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&pb.ReportAck{})
		}
		if err != nil {
			return err
		}
		if err := c.checkReport(r); err != nil {
			c.log.Warn("rejected report", "err", err)
			return err
		}
		if !c.post(reported{r}) {
			return status.Error(codes.Unavailable, "coordinator: the job has ended")
		}
	}
}

// checkReport validates a report's fields against the job.
func (c *coordinator) checkReport(r *pb.WorkerReport) error {
	m := c.members.byRank(r.Rank)
	switch {
	case m == nil:
		return status.Errorf(codes.InvalidArgument, "coordinator: report: rank %d is not in this job", r.Rank)
	case m.id != r.WorkerId:
		return status.Errorf(codes.PermissionDenied, "coordinator: report: rank %d is %s, not %q", r.Rank, m.id, r.WorkerId)
	case r.Step >= c.job.MaxSteps:
		return status.Errorf(codes.InvalidArgument, "coordinator: report: step %d beyond the job's %d steps", r.Step, c.job.MaxSteps)
	}
	return nil
}

func (s *service) UploadState(stream pb.Coordinator_UploadStateServer) error {
	c := s.c
	st, err := wire.ReceiveState(stream.Recv, uint64(len(c.initParams)))
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: %v", err)
	}
	h := st.Header
	if _, err := c.checkJob(h.JobId, h.Rank); err != nil {
		return err
	}
	if err := c.checkUpload(h, len(st.Params)); err != nil {
		return err
	}
	if !c.post(uploaded{st}) {
		return status.Error(codes.Unavailable, "coordinator: the job has ended")
	}
	return stream.SendAndClose(&pb.UploadAck{})
}

// checkUpload validates an upload's header: only rank 0 uploads, at an
// epoch's end or the job's end, with flags that match its step.
func (c *coordinator) checkUpload(h *pb.StateHeader, params int) error {
	spe, steps := c.job.StepsPerEpoch, c.job.MaxSteps
	switch {
	case h.Rank != 0:
		return status.Errorf(codes.PermissionDenied, "coordinator: upload: only rank 0 uploads state, not rank %d", h.Rank)
	case params != len(c.initParams):
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: %d parameters, the model has %d", params, len(c.initParams))
	case h.Step == 0 || h.Step > steps:
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: step %d outside the job's %d steps", h.Step, steps)
	case uint64(h.Epoch) != (h.Step-1)/spe:
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: epoch %d does not contain step %d", h.Epoch, h.Step)
	case h.EpochEnd != (h.Step%spe == 0):
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: epoch_end %v at step %d", h.EpochEnd, h.Step)
	case h.Final != (h.Step == steps):
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: final %v at step %d of %d", h.Final, h.Step, steps)
	case !h.EpochEnd && !h.Final:
		return status.Errorf(codes.InvalidArgument, "coordinator: upload: step %d is neither an epoch's end nor the job's", h.Step)
	}
	return nil
}

// maxTraceEvents bounds what one worker may upload as its timeline.
const maxTraceEvents = 4_000_000

func (s *service) UploadTrace(stream pb.Coordinator_UploadTraceServer) error {
	c := s.c
	if !c.job.Trace {
		return status.Error(codes.FailedPrecondition, "coordinator: upload trace: this job records no trace")
	}
	var tr traced
	tr.rank = -1
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if _, err := c.checkJob(chunk.JobId, chunk.Rank); err != nil {
			return err
		}
		if tr.rank >= 0 && chunk.Rank != tr.rank {
			return status.Errorf(codes.InvalidArgument, "coordinator: upload trace: rank %d in a stream of rank %d", chunk.Rank, tr.rank)
		}
		tr.rank, tr.dropped = chunk.Rank, chunk.Dropped
		if len(tr.events)+len(chunk.Events) > maxTraceEvents {
			return status.Errorf(codes.ResourceExhausted, "coordinator: upload trace: more than %d events", maxTraceEvents)
		}
		for _, e := range chunk.Events {
			if e.DurNs < 0 || e.Step >= c.job.MaxSteps {
				return status.Errorf(codes.InvalidArgument, "coordinator: upload trace: event %q of step %d lasting %dns", e.Name, e.Step, e.DurNs)
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
