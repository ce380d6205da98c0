package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/nn"
	"ringtrain/internal/ringrpc"
	"ringtrain/internal/rpc"
	"ringtrain/internal/sampler"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// fetchTimeout bounds the download of the shard and of the initial state.
const fetchTimeout = 2 * time.Minute

// run trains the assigned job and reports the outcome.
func (s *session) run() error {
	err := s.train()
	if err == nil {
		// Done: the coordinator answers once every replica has finished,
		// and only then may the ring close without cutting off frames a
		// neighbour still needs.
		st := s.awaitStop()
		s.closeRing()
		switch {
		case st == nil:
			return fmt.Errorf("worker: finished, but no word from the coordinator within %v", s.cfg.StopTimeout)
		case st.Failed:
			return fmt.Errorf("worker: the coordinator failed the job: %s", st.Reason)
		}
		s.log.Info("job complete")
		return nil
	}
	s.closeRing() // the neighbours fail at once rather than at their deadline
	if cause := context.Cause(s.ctx); errors.Is(cause, errStopped) || s.ctx.Err() != nil && cause != nil {
		err = cause
	} else if st := s.awaitStop(); st != nil && st.Failed {
		// The coordinator usually knows the root cause (a lost worker).
		err = fmt.Errorf("%w (coordinator: %s)", err, st.Reason)
	}
	return fmt.Errorf("worker %s (rank %d): %w", s.cfg.ID, s.assign.Rank, err)
}

// closeRing closes the ring transport, if one was formed.
func (s *session) closeRing() {
	if s.transport != nil {
		s.transport.Close()
		s.transport = nil
	}
}

// job checks the assignment's numbers before anything relies on them.
func (s *session) job() (*pb.JobSpec, error) {
	a, j := s.assign, s.assign.Job
	n := len(a.RingAddrs)
	switch {
	case n < 1 || int(j.WorldSize) != n || len(a.WorkerIds) != n:
		return nil, fmt.Errorf("assignment: world size %d with %d addresses and %d ids", j.WorldSize, n, len(a.WorkerIds))
	case a.Rank < 0 || int(a.Rank) >= n:
		return nil, fmt.Errorf("assignment: rank %d outside a ring of %d", a.Rank, n)
	case j.PerWorkerBatch < 1 || j.StepsPerEpoch < 1 || j.MaxSteps < 1:
		return nil, fmt.Errorf("assignment: batch %d, %d steps per epoch, %d steps", j.PerWorkerBatch, j.StepsPerEpoch, j.MaxSteps)
	case j.AllreduceTimeoutMs < 1:
		return nil, errors.New("assignment: no all-reduce timeout")
	}
	return j, nil
}

// train fetches what the job needs, forms the ring and runs every step.
func (s *session) train() error {
	job, err := s.job()
	if err != nil {
		return err
	}
	spec, err := nn.ParseSpec([]byte(job.ModelJson))
	if err != nil {
		return err
	}
	model, err := nn.New(spec)
	if err != nil {
		return err
	}
	shard, err := s.fetchShard(job, model.InputSize())
	if err != nil {
		return err
	}
	if err := model.CheckDataset(shard.Data); err != nil {
		return err
	}
	if err := s.fetchState(job, model); err != nil {
		return err
	}
	model.SetSeed(job.Seed)

	connectCtx, cancel := context.WithTimeout(s.ctx, s.cfg.JoinTimeout)
	transport, err := ringrpc.Connect(connectCtx, s.ringSvc, ringrpc.Config{
		JobID: job.JobId, Generation: s.assign.Generation, Rank: int(s.assign.Rank),
		Addrs: s.assign.RingAddrs, DialOptions: rpc.DialOptions(),
	})
	cancel()
	if err != nil {
		return err
	}
	s.transport = transport
	s.log.Info("ring formed", "size", job.WorldSize, "left", transport.Left(), "right", transport.Right())

	rep, err := startReporter(s.ctx, s.client, s.log)
	if err != nil {
		return err
	}
	defer rep.close()
	ringCfg := allreduce.Config{SegmentBytes: int(job.SegmentBytes)}
	var tl *timeline
	if job.Trace {
		tl = &timeline{}
		ringCfg.Phases = tl.phases
	}
	ring := allreduce.New(transport, ringCfg)
	st := newStepper(model, ring, shard.Data, shard.SampleIDs, int(job.PerWorkerBatch), int(job.WorldSize*job.PerWorkerBatch),
		time.Duration(job.AllreduceTimeoutMs)*time.Millisecond)
	if job.Deterministic {
		if err := st.deterministicMode(int(job.MicroBatch), int(job.FixedPointBits)); err != nil {
			return fmt.Errorf("assignment: %w", err)
		}
	}
	st.tl = tl
	t := &trainer{s: s, job: job, model: model, shard: shard, rep: rep, st: st}
	return t.loop()
}

// fetchShard downloads this worker's lanes of the training set.
func (s *session) fetchShard(job *pb.JobSpec, features int) (*wire.Shard, error) {
	ctx, cancel := context.WithTimeout(s.ctx, fetchTimeout)
	defer cancel()
	stream, err := s.client.FetchShard(ctx, &pb.ShardRequest{JobId: job.JobId, Rank: s.assign.Rank})
	if err != nil {
		return nil, fmt.Errorf("fetch shard: %w", err)
	}
	shard, err := wire.ReceiveShard(stream.Recv, int(s.assign.Rank)*int(job.PerWorkerBatch), int(job.PerWorkerBatch), int(job.StepsPerEpoch), job.Seed, features)
	if err != nil {
		return nil, fmt.Errorf("fetch shard: %w", err)
	}
	s.log.Info("shard received", "images", shard.Data.Count, "lanes", len(shard.Lanes.Members))
	return shard, nil
}

// fetchState downloads the state every replica starts from.
func (s *session) fetchState(job *pb.JobSpec, model *nn.Model) error {
	ctx, cancel := context.WithTimeout(s.ctx, fetchTimeout)
	defer cancel()
	stream, err := s.client.FetchState(ctx, &pb.StateRequest{JobId: job.JobId})
	if err != nil {
		return fmt.Errorf("fetch state: %w", err)
	}
	st, err := wire.ReceiveState(stream.Recv, uint64(model.NumParams()))
	if err != nil {
		return fmt.Errorf("fetch state: %w", err)
	}
	if len(st.Params) != model.NumParams() {
		return fmt.Errorf("fetch state: %d parameters for a model of %d", len(st.Params), model.NumParams())
	}
	copy(model.Params(), st.Params)
	if len(st.Opt.Slots) > 0 {
		if err := model.Optimizer().SetState(st.Opt); err != nil {
			return fmt.Errorf("fetch state: %w", err)
		}
	}
	return nil
}

// trainer runs the synchronized steps of one job.
type trainer struct {
	s     *session
	job   *pb.JobSpec
	model *nn.Model
	shard *wire.Shard
	rep   *reporter
	st    *stepper
}

// learningRate is the rate of step t: linear warm-up from the base to the
// peak rate, then the peak rate.
func learningRate(job *pb.JobSpec, t uint64) float64 {
	if t < job.WarmupSteps {
		return job.BaseLearningRate + (job.PeakLearningRate-job.BaseLearningRate)*float64(t)/float64(job.WarmupSteps)
	}
	return job.PeakLearningRate
}

// loop runs every step and reports: losses, weight hashes, the state at
// epoch ends and at the end.
func (t *trainer) loop() error {
	job, m, rank := t.job, t.model, t.s.assign.Rank
	var local []int
	var hashBuf []byte
	var order *sampler.Epoch
	start := time.Now()
	for step := uint64(0); step < job.MaxSteps; step++ {
		epoch, inEpoch := step/job.StepsPerEpoch, int(step%job.StepsPerEpoch)
		if inEpoch == 0 || order == nil {
			order = t.shard.Lanes.Epoch(int(epoch))
		}
		local = order.Batch(inEpoch, local[:0])
		m.Optimizer().SetLearningRate(learningRate(job, step))
		loss, tm, err := t.st.step(t.s.ctx, step, local)
		if err != nil {
			if cause := context.Cause(t.s.ctx); cause != nil {
				return cause
			}
			t.rep.send(&pb.WorkerReport{Rank: rank, WorkerId: t.s.cfg.ID, Step: step, Error: err.Error()})
			return err
		}
		done := step+1 == job.MaxSteps
		r := &pb.WorkerReport{Rank: rank, WorkerId: t.s.cfg.ID, Step: step, Epoch: uint32(epoch), Loss: loss,
			ComputeNs: uint64(tm.compute), AllreduceNs: uint64(tm.allreduce), OptimizerNs: uint64(tm.optimizer),
			ElapsedNs: uint64(time.Since(start))}
		if t.st.det != nil {
			r.FixedPointBits = uint32(t.st.det.bits)
		}
		if done || (job.HashEvery > 0 && (step+1)%uint64(job.HashEvery) == 0) {
			r.WeightsHash, hashBuf = wire.WeightsHash(m.Params(), hashBuf)
			r.HasHash = true
		}
		epochEnd := inEpoch+1 == int(job.StepsPerEpoch)
		if rank == 0 && (epochEnd || done) {
			if err := t.upload(step+1, uint32(epoch), epochEnd, done); err != nil {
				return err
			}
		}
		if done {
			r.Finished, r.TrainNs = true, uint64(time.Since(start))
			if t.st.tl != nil {
				if err := t.st.tl.upload(t.s.ctx, t.s.client, job.JobId, rank); err != nil {
					return err
				}
			}
		}
		if rank == 0 || r.HasHash || r.Finished {
			t.rep.send(r)
		}
	}
	return nil
}

// upload sends the coordinator the parameters at an epoch's end, and
// everything at the job's end.
func (t *trainer) upload(step uint64, epoch uint32, epochEnd, final bool) error {
	ctx, cancel := context.WithTimeout(t.s.ctx, fetchTimeout)
	defer cancel()
	stream, err := t.s.client.UploadState(ctx)
	if err != nil {
		return fmt.Errorf("upload state: %w", err)
	}
	st := &wire.State{Header: &pb.StateHeader{JobId: t.job.JobId, Rank: t.s.assign.Rank, Step: step, Epoch: epoch,
		EpochEnd: epochEnd, Final: final}, Params: t.model.Params()}
	if final {
		st.Opt = t.model.Optimizer().State()
	}
	if err := wire.SendState(stream.Send, st); err != nil {
		return fmt.Errorf("upload state: %w", err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return fmt.Errorf("upload state: %w", err)
	}
	return nil
}
