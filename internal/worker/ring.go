package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/ringrpc"
	"ringtrain/internal/ringtcp"
	"ringtrain/internal/sampler"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// runRing takes part in one ring: prepare the replica, connect, run steps
// until the job ends, the ring pauses or fails, and report how it ended. It
// returns an error only when the worker cannot go on.
func (s *session) runRing(ctx context.Context, a *pb.Assignment) error {
	w := s.w
	w.closeRing() // every member is done with the previous ring by now
	if err := checkAssignment(a); err != nil {
		return fmt.Errorf("worker %s: %w", w.cfg.ID, err)
	}
	if !w.joined && a.GossipAddr != "" {
		if _, err := w.node.Join([]string{a.GossipAddr}); err == nil {
			w.joined = true
		} else {
			w.log.Warn("cannot join the coordinator's gossip cluster", "err", err)
		}
	}
	log := w.log.With("rank", a.Rank, "ring", a.Generation)
	ringCtx := s.ring.start(ctx, a.Generation)
	defer s.ring.end()
	failed := func(err error) error {
		var nf *errNonFinite
		if !errors.As(err, &nf) {
			// The neighbours fail at once rather than at their deadline.
			// Not after a non-finite step: every member saw the same sum
			// and stops by itself, and a closed transport would cut short
			// a neighbour still receiving the step's last frames.
			w.closeRing()
		}
		if cause := context.Cause(ringCtx); cause != nil && errors.Is(cause, errCoordinatorLost) {
			return cause
		}
		applied := uint64(0)
		if w.replica != nil {
			applied = w.replica.applied
		}
		log.Warn("ring failed", "err", err, "applied", applied)
		rep := &pb.WorkerReport{Rank: a.Rank, WorkerId: w.cfg.ID, Generation: a.Generation, Status: pb.ReportStatus_FAILED,
			Applied: applied, Error: err.Error()}
		if nf != nil {
			// Retrying would compute the same gradient: the job must stop.
			rep.Fatal, rep.NonfiniteHere, rep.Step = true, nf.here, nf.step
			if nf.here {
				log.Error("non-finite gradient from this worker's batch; the job stops", "step", nf.step, "sample_ids", sampleIDs(nf.samples, 16))
			}
		}
		classifyFailure(rep, err, int32((len(a.RingAddrs)+int(a.Rank)-1)%max(1, len(a.RingAddrs))))
		s.rep.send(rep)
		return nil
	}
	r, err := s.prepare(ringCtx, a)
	if err != nil {
		if ringCtx.Err() != nil {
			return failed(err)
		}
		return fmt.Errorf("worker %s: %w", w.cfg.ID, err)
	}
	job := a.Job
	connectCtx, cancel := context.WithTimeout(ringCtx, w.cfg.JoinTimeout)
	t, err := w.connectRing(connectCtx, job.JobId, a)
	cancel()
	if err != nil {
		return failed(err)
	}
	w.transport = t
	// The state is news for the cluster, not a condition of training:
	// memberlist's update waits for the next gossip round (a fifth of a
	// second, or up to its second's timeout on a busy machine), which the
	// ring does not wait for. It is sent by the time the ring ends.
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		w.node.SetState("training")
	}()
	defer func() { <-announced }()
	w.metrics.RingSize.Set(float64(len(a.RingAddrs)))
	log.Info("ring formed", "size", len(a.RingAddrs), "start_step", a.StartStep, "lanes", a.LaneCount, "data_plane", dataPlane(t))
	if tt, ok := t.(*ringtcp.Transport); ok && w.cfg.SharedMemory && t.Size() > 1 {
		if to, from := tt.WhyNotSharedMemory(); to != "" || from != "" {
			log.Debug("frames on TCP, not shared memory", "to_right", to, "from_left", from)
		}
	}

	ringCfg := allreduce.Config{SegmentBytes: int(job.SegmentBytes)}
	if job.Trace && r.tl == nil {
		r.tl = &timeline{}
	}
	tl := r.tl
	if tl != nil {
		ringCfg.Phases = tl.phases
	}
	st := newStepper(r.model, allreduce.New(t, ringCfg), r.shard.Data, r.shard.SampleIDs, int(job.GlobalBatch),
		time.Duration(job.AllreduceTimeoutMs)*time.Millisecond)
	st.tl, st.skipNonFinite = tl, job.SkipNonfinite
	// The backup (a copy of the parameters and optimiser state before every
	// update, in the model's dtype: 0.74 ms a step for the 670,000
	// parameters of 784-512-512-10 with Adam, BenchmarkSnapshot, on a loaded
	// machine) undoes a step that not every member applied. A ring of one
	// commits every step its member applied (the committed step is the least
	// any member applied, control's endRing), so its member is asked to undo
	// only the job's last step, when that step's state never reached the
	// coordinator: steps keeps the backup for that step alone.
	if len(a.RingAddrs) > 1 {
		st.backup = &r.backup
	}
	st.bucketBytes = int(job.BucketBytes)
	if job.Deterministic {
		if err := st.deterministicMode(int(job.MicroBatch), r.initialBits(job)); err != nil {
			return fmt.Errorf("worker %s: assignment: %w", w.cfg.ID, err)
		}
	}
	if err := st.compress(job.Compression); err != nil {
		return fmt.Errorf("worker %s: assignment: %w", w.cfg.ID, err)
	}
	outcome, err := s.steps(ringCtx, a, r, st)
	if err != nil {
		return failed(err)
	}
	switch outcome {
	case pausedLeaving, paused:
		s.rep.send(&pb.WorkerReport{Rank: a.Rank, WorkerId: w.cfg.ID, Generation: a.Generation, Status: pb.ReportStatus_PAUSED,
			Applied: r.applied, Leaving: outcome == pausedLeaving})
		log.Info("ring paused", "applied", r.applied, "leaving", outcome == pausedLeaving)
	case finished:
		log.Info("training finished", "steps", r.applied)
	}
	return nil
}

// connectRing forms the ring of a over the configured data plane.
func (w *worker) connectRing(ctx context.Context, job string, a *pb.Assignment) (allreduce.Transport, error) {
	if w.cfg.DataPlane == "grpc" {
		return ringrpc.Connect(ctx, w.ringSvc, ringrpc.Config{JobID: job, Generation: a.Generation,
			Rank: int(a.Rank), Addrs: a.RingAddrs, DialOptions: w.cfg.Security.DialOptions()})
	}
	return ringtcp.Connect(ctx, w.ringTCP, ringtcp.Config{JobID: job, Generation: a.Generation,
		Rank: int(a.Rank), Addrs: a.RingAddrs, TLS: w.cfg.Security.TLSConfig(), Token: w.cfg.Security.Token,
		SharedMemory: w.cfg.SharedMemory})
}

// dataPlane says what carries the frames of t: to the right-hand
// neighbour, then from the left-hand one, where they differ.
func dataPlane(t allreduce.Transport) string {
	tt, ok := t.(*ringtcp.Transport)
	if !ok {
		return "grpc"
	}
	if t.Size() == 1 {
		return "none (a ring of one)"
	}
	name := func(shm bool) string {
		if shm {
			return "shared memory"
		}
		return "tcp"
	}
	to, from := tt.SharedMemory()
	if to == from {
		return name(to)
	}
	return fmt.Sprintf("%s to rank %d, %s from rank %d", name(to), t.Right().Rank, name(from), t.Left().Rank)
}

// classifyFailure fills in what a failure report tells the coordinator
// about err: whether this member's all-reduce passed its deadline, how long
// it had been waiting for its left-hand neighbour (rank left), and whether
// its failure followed another's (a neighbour's broken stream, an abort).
// A member whose own deadline passed is a witness of the root cause even
// when the coordinator's abort arrived meanwhile.
func classifyFailure(rep *pb.WorkerReport, err error, left int32) {
	var ae *allreduce.Error
	if errors.As(err, &ae) {
		rep.TimedOut = ae.Dir == "receive from" && errors.Is(err, context.DeadlineExceeded)
		if ae.Waiting > 0 {
			rep.WaitingNs, rep.WaitedFor, rep.FramesReceived = uint64(ae.Waiting), left, uint32(ae.Received)
		}
	}
	rep.Secondary = !rep.TimedOut &&
		(errors.Is(err, allreduce.ErrAborted) || errors.Is(err, ringrpc.ErrNeighbourGone) || errors.Is(err, ringtcp.ErrNeighbourGone) || errors.Is(err, errAborted))
}

// withRingCause adds the reason the ring's context ended, if it did, to the
// error of a step. Both stay wrapped: a collective that timed out just
// before the coordinator's abort arrived still reports its deadline and the
// peer it waited for.
func withRingCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}

// How a ring ended for this worker.
type ringOutcome int

const (
	finished ringOutcome = iota
	paused
	pausedLeaving
)

// steps runs the ring's steps from its start to the job's end or a pause.
func (s *session) steps(ctx context.Context, a *pb.Assignment, r *replica, st *stepper) (ringOutcome, error) {
	w, job, rank := s.w, a.Job, a.Rank
	var local []int
	var hashBuf []byte
	var order *sampler.Epoch
	if r.started.IsZero() {
		r.started = time.Now()
	}
	batch := stepReports{send: s.rep.send}
	defer batch.flush() // before the report of how the ring ended
	for step := a.StartStep; step < job.MaxSteps; step++ {
		epoch, inEpoch := step/job.StepsPerEpoch, int(step%job.StepsPerEpoch)
		if inEpoch == 0 || order == nil {
			order = r.shard.Lanes.Epoch(int(epoch))
		}
		local = order.Batch(inEpoch, local[:0])
		leaving := draining(w.cfg.Drain)
		r.model.Optimizer().SetLearningRate(learningRate(job, step) * r.model.Spec().Optimizer.Schedule.Factor(step, int(job.StepsPerEpoch)))
		if step+1 == job.MaxSteps {
			// Even a ring of one keeps a backup of the last step
			// (see runRing).
			st.backup = &r.backup
		}
		loss, out, tm, err := st.step(ctx, step, local, leaving || s.ring.pause.Load())
		if err != nil {
			return 0, withRingCause(ctx, err)
		}
		r.applied, r.backupValid = step+1, st.backup != nil
		if st.det != nil {
			r.bits = st.det.bits
		}
		s.w.recordStep(loss, out, tm, len(local))
		if out.skipped {
			log := w.log.With("step", step)
			switch {
			case out.sumCause != "":
				log.Warn("every worker's gradient was finite, their sum was not; every replica skipped the update", "cause", out.sumCause)
			case out.here:
				log.Warn("non-finite gradient from this worker's batch; every replica skipped the update", "sample_ids", sampleIDs(st.globalIDs(), 16))
			default:
				log.Warn("non-finite gradient from another worker's batch; every replica skipped the update")
			}
		}
		done := r.applied == job.MaxSteps
		elapsed := time.Since(r.started)
		rep := &pb.WorkerReport{Rank: rank, WorkerId: w.cfg.ID, Generation: a.Generation, Step: step, Epoch: uint32(epoch), Loss: loss,
			ComputeNs: uint64(tm.compute), AllreduceNs: uint64(tm.allreduce), OptimizerNs: uint64(tm.optimizer),
			ElapsedNs: uint64(elapsed), FixedPointBits: uint32(r.bits), Skipped: out.skipped, NonfiniteHere: out.here}
		// A ring of one has no other replica to compare with: its hash
		// goes only with the last step (the job's weights).
		if done || (job.HashEvery > 0 && r.applied%uint64(job.HashEvery) == 0 && len(a.RingAddrs) > 1) {
			if r.model.Dtype() == "float32" {
				rep.WeightsHash, hashBuf = wire.WeightsHash32(r.model.Params32(), hashBuf)
			} else {
				rep.WeightsHash, hashBuf = wire.WeightsHash(r.model.Params(), hashBuf)
			}
			rep.HasHash = true
		}
		epochEnd := r.applied%job.StepsPerEpoch == 0
		checkpoint := job.CheckpointEvery > 0 && r.applied%job.CheckpointEvery == 0
		if rank == 0 && (epochEnd || checkpoint || done) {
			h := &pb.StateHeader{EpochEnd: epochEnd, Checkpoint: checkpoint || epochEnd, Final: done}
			if err := s.upload(ctx, a, r, h); err != nil {
				return 0, err
			}
		}
		if done {
			// The training time ends with the last step, before the
			// final state's upload.
			rep.Finished, rep.TrainNs = true, uint64(elapsed)
			if st.tl != nil {
				if err := st.tl.upload(ctx, s.client, job.JobId, rank); err != nil {
					return 0, err
				}
			}
		}
		switch {
		case rank == 0:
			batch.add(rep, rep.HasHash || rep.Finished || out.here || out.skipped || out.paused || epochEnd || checkpoint)
		case rep.HasHash || rep.Finished || out.here:
			s.rep.send(rep)
		}
		if done {
			return finished, nil
		}
		if out.paused {
			if rank == 0 && s.ring.checkpoint.Load() && !(epochEnd || checkpoint) {
				if err := s.upload(ctx, a, r, &pb.StateHeader{Checkpoint: true}); err != nil {
					return 0, err
				}
			}
			if leaving {
				return pausedLeaving, nil
			}
			return paused, nil
		}
	}
	return finished, nil
}

// draining reports whether the drain channel is closed.
func draining(drain <-chan struct{}) bool {
	select {
	case <-drain:
		return true
	default:
		return false
	}
}

// learningRate is the job's rate of step t: linear warm-up from the base to
// the peak rate, then the peak rate. The model's schedule, if any,
// multiplies it.
func learningRate(job *pb.JobSpec, t uint64) float64 {
	if t < job.WarmupSteps {
		return job.BaseLearningRate + (job.PeakLearningRate-job.BaseLearningRate)*float64(t)/float64(job.WarmupSteps)
	}
	return job.PeakLearningRate
}

// recordStep updates the worker's metrics after a step.
func (w *worker) recordStep(loss float64, out stepOutcome, tm stepTiming, samples int) {
	m := w.metrics
	m.Steps.Inc()
	m.AllreduceBytes.Add(float64(out.reduced)) // a skipped step's vectors travelled too
	if out.skipped {
		m.SkippedSteps.Inc()
		if out.here {
			m.NonFiniteBatches.Inc()
		}
		return
	}
	m.Loss.Set(loss)
	m.AllreduceSeconds.Observe(tm.allreduce.Seconds())
	if d := (tm.compute + tm.allreduce + tm.optimizer).Seconds(); d > 0 {
		m.SamplesPerSecond.Set(float64(samples) / d)
	}
}

// reportEvery is how often rank 0 reports its steps when none needs
// reporting at once, and reportMaxSteps the most steps one report covers.
const (
	reportEvery    = 25 * time.Millisecond
	reportMaxSteps = 1000
)

// stepReports batches rank 0's step reports: one report covers the steps
// since the last one (their losses, their summed times), so that the
// coordinator's work on them does not take a share of every step. A step
// the coordinator must hear of at once (a hash to compare, an upload, a
// skipped update, a pause, the last step) is sent with those before it.
type stepReports struct {
	send    func(*pb.WorkerReport)
	pending *pb.WorkerReport
	since   time.Time
}

// add records rep, the report of the step after the pending ones, and
// sends the batch when now is true or it is due.
func (b *stepReports) add(rep *pb.WorkerReport, now bool) {
	if p := b.pending; p != nil {
		rep.Losses = append(p.Losses, rep.Loss)
		rep.ComputeNs += p.ComputeNs
		rep.AllreduceNs += p.AllreduceNs
		rep.OptimizerNs += p.OptimizerNs
	} else {
		rep.Losses, b.since = append(rep.Losses[:0], rep.Loss), time.Now()
	}
	b.pending = rep
	if now || len(rep.Losses) >= reportMaxSteps || time.Since(b.since) >= reportEvery {
		b.flush()
	}
}

// flush sends the pending steps' report, if any.
func (b *stepReports) flush() {
	if b.pending != nil {
		b.send(b.pending)
		b.pending = nil
	}
}

// sampleIDs names at most max of a batch's sample ids for a log line.
func sampleIDs(ids []int, max int) string {
	if len(ids) > max {
		return fmt.Sprintf("%v and %d more", ids[:max], len(ids)-max)
	}
	return fmt.Sprint(ids)
}
