package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ringtrain/internal/fixedpoint"
	"ringtrain/internal/nn"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// fetchTimeout bounds a download or upload of a shard or a state.
const fetchTimeout = 2 * time.Minute

// replica is this worker's copy of the model and what it trains on. It
// outlives rings, and sessions: a worker keeps its state through a
// reconfiguration and fetches only what it lacks.
type replica struct {
	jobID string
	model *nn.Model
	// applied is the number of steps the state reflects; valid says
	// whether the worker holds a state at all.
	applied uint64
	valid   bool
	// backup holds the state before the last step, when backupValid.
	backup      nn.Snapshot
	backupValid bool
	// The lanes the shard holds.
	shard                *wire.Shard
	firstLane, laneCount uint32
	// bits is the deterministic mode's current resolution, which carries
	// over from ring to ring.
	bits int
	// started is when the worker began its first step in this job: the
	// training time it reports leaves out start-up (shard, state, ring).
	started time.Time
	// tl records the timeline across rings, when the job traces.
	tl *timeline
}

// checkAssignment validates an assignment before anything relies on it.
func checkAssignment(a *pb.Assignment) error {
	j := a.Job
	if j == nil {
		return errors.New("assignment without a job")
	}
	n := len(a.RingAddrs)
	switch {
	case n < 1 || len(a.WorkerIds) != n:
		return fmt.Errorf("assignment: %d addresses and %d ids", n, len(a.WorkerIds))
	case a.Rank < 0 || int(a.Rank) >= n:
		return fmt.Errorf("assignment: rank %d outside a ring of %d", a.Rank, n)
	case j.GlobalBatch < 1 || j.StepsPerEpoch < 1 || j.MaxSteps < 1:
		return fmt.Errorf("assignment: global batch %d, %d steps per epoch, %d steps", j.GlobalBatch, j.StepsPerEpoch, j.MaxSteps)
	case a.LaneCount < 1 || uint64(a.FirstLane)+uint64(a.LaneCount) > uint64(j.GlobalBatch):
		return fmt.Errorf("assignment: lanes %d+%d outside a global batch of %d", a.FirstLane, a.LaneCount, j.GlobalBatch)
	case a.StartStep > j.MaxSteps:
		return fmt.Errorf("assignment: start step %d beyond the job's %d steps", a.StartStep, j.MaxSteps)
	case j.AllreduceTimeoutMs < 1:
		return errors.New("assignment: no all-reduce timeout")
	case j.Deterministic && (j.MicroBatch < 1 || a.LaneCount%j.MicroBatch != 0):
		return fmt.Errorf("assignment: %d lanes are not a whole number of micro-batches of %d", a.LaneCount, j.MicroBatch)
	}
	return nil
}

// prepare brings the replica to the state the assignment starts from and
// fetches the lanes it computes.
func (s *session) prepare(ctx context.Context, a *pb.Assignment) (*replica, error) {
	w, job := s.w, a.Job
	r := w.replica
	if r == nil || r.jobID != job.JobId {
		spec, err := nn.ParseSpec([]byte(job.ModelJson))
		if err != nil {
			return nil, err
		}
		m, err := nn.New(spec)
		if err != nil {
			return nil, err
		}
		m.SetSeed(job.Seed)
		r = &replica{jobID: job.JobId, model: m, bits: int(job.FixedPointBits)}
		w.replica = r
	}
	switch {
	case a.FetchState:
		if err := s.fetchState(ctx, a, r); err != nil {
			return nil, err
		}
	case a.RestoreBackup:
		if !r.backupValid || r.applied != a.StartStep+1 {
			return nil, fmt.Errorf("asked to undo step %d, but this replica holds %d steps (backup: %v)", a.StartStep, r.applied, r.backupValid)
		}
		if err := r.model.LoadSnapshot(&r.backup); err != nil {
			return nil, err
		}
		r.applied, r.backupValid = a.StartStep, false
		w.metrics.Rollbacks.Inc()
		w.log.Info("rolled back one step", "to", a.StartStep)
	}
	if !r.valid || r.applied != a.StartStep {
		return nil, fmt.Errorf("the ring starts at step %d, but this replica holds %d steps", a.StartStep, r.applied)
	}
	if a.UploadState {
		if err := s.upload(ctx, a, r, &pb.StateHeader{Base: true}); err != nil {
			return nil, err
		}
	}
	if r.shard == nil || r.firstLane != a.FirstLane || r.laneCount != a.LaneCount {
		if err := s.fetchShard(ctx, a, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// fetchState downloads the state the ring starts from.
func (s *session) fetchState(ctx context.Context, a *pb.Assignment, r *replica) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	stream, err := s.client.FetchState(ctx, &pb.StateRequest{JobId: a.Job.JobId, Generation: a.Generation})
	if err != nil {
		return fmt.Errorf("fetch state: %w", err)
	}
	st, err := wire.ReceiveState(stream.Recv, uint64(r.model.NumParams()))
	if err != nil {
		return fmt.Errorf("fetch state: %w", err)
	}
	if len(st.Params) != r.model.NumParams() || st.Header.Step != a.StartStep {
		return fmt.Errorf("fetch state: %d parameters at step %d, want %d at step %d", len(st.Params), st.Header.Step, r.model.NumParams(), a.StartStep)
	}
	if err := r.model.LoadState(st.Params, st.Opt); err != nil {
		return fmt.Errorf("fetch state: %w", err)
	}
	r.applied, r.valid, r.backupValid = st.Header.Step, true, false
	if b := int(st.Header.FixedPointBits); b > 0 {
		r.bits = b
	}
	return nil
}

// fetchShard downloads the lanes the worker computes in this ring.
func (s *session) fetchShard(ctx context.Context, a *pb.Assignment, r *replica) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	job := a.Job
	stream, err := s.client.FetchShard(ctx, &pb.ShardRequest{JobId: job.JobId, FirstLane: a.FirstLane, LaneCount: a.LaneCount})
	if err != nil {
		return fmt.Errorf("fetch shard: %w", err)
	}
	shard, err := wire.ReceiveShard(stream.Recv, int(a.FirstLane), int(a.LaneCount), int(job.StepsPerEpoch), job.Seed, r.model.InputSize())
	if err != nil {
		return fmt.Errorf("fetch shard: %w", err)
	}
	if err := r.model.CheckDataset(shard.Data); err != nil {
		return err
	}
	// The batches are gathered as sparse rows: index them now, not in
	// the first step.
	shard.Data.IndexNonzero()
	r.shard, r.firstLane, r.laneCount = shard, a.FirstLane, a.LaneCount
	s.w.log.Info("shard received", "images", shard.Data.Count, "lanes", a.LaneCount, "first_lane", a.FirstLane)
	return nil
}

// upload sends the coordinator this replica's state: parameters and
// optimiser state, with the header's flags saying why.
func (s *session) upload(ctx context.Context, a *pb.Assignment, r *replica, h *pb.StateHeader) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	stream, err := s.client.UploadState(ctx)
	if err != nil {
		return fmt.Errorf("upload state: %w", err)
	}
	h.JobId, h.Rank, h.Generation, h.Step = a.Job.JobId, a.Rank, a.Generation, r.applied
	if h.Step > 0 {
		h.Epoch = uint32((h.Step - 1) / a.Job.StepsPerEpoch)
	}
	if a.Job.Deterministic {
		h.FixedPointBits = uint32(r.bits)
	}
	st := &wire.State{Header: h, Params: r.model.AppendParams(nil), Opt: r.model.Optimizer().State()}
	if err := wire.SendState(stream.Send, st); err != nil {
		return fmt.Errorf("upload state: %w", err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return fmt.Errorf("upload state: %w", err)
	}
	return nil
}

// initialBits is the fixed-point resolution a deterministic stepper starts
// with.
func (r *replica) initialBits(job *pb.JobSpec) int {
	if r.bits > 0 {
		return r.bits
	}
	if job.FixedPointBits > 0 {
		return int(job.FixedPointBits)
	}
	return fixedpoint.DefaultBits
}
