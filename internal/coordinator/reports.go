package coordinator

import (
	"fmt"
	"time"

	"ringtrain/internal/nn"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// MembershipChange records a worker lost, joined or left during a job.
type MembershipChange struct {
	// Seconds since the coordinator started.
	Seconds float64 `json:"seconds"`
	Kind    string  `json:"kind"` // lost, joined, left, ring-failed
	Worker  string  `json:"worker,omitempty"`
	// Ring is the generation affected, Step where training stood.
	Ring  uint32 `json:"ring"`
	Step  uint64 `json:"step"`
	Cause string `json:"cause,omitempty"`
}

// change records a membership change.
func (c *coordinator) change(s *supervisor, ch MembershipChange) {
	ch.Seconds = time.Since(c.started).Seconds()
	s.history.MembershipChanges = append(s.history.MembershipChanges, ch)
	c.metrics.MembershipChanges.WithLabelValues(ch.Kind).Inc()
}

// report records a worker's report.
func (c *coordinator) report(s *supervisor, r *pb.WorkerReport) error {
	ring := s.ring
	if ring == nil || r.Generation != ring.id {
		c.log.Debug("report from another ring", "worker", r.WorkerId, "ring", r.Generation)
		return nil
	}
	if r.Rank < 0 || int(r.Rank) >= len(ring.members) || ring.members[r.Rank].id != r.WorkerId {
		return c.rejectReport(s, r, fmt.Errorf("rank %d of ring %d is not %q", r.Rank, ring.id, r.WorkerId))
	}
	m := ring.members[r.Rank]
	if _, gone := ring.gone[m]; gone {
		// Declared lost before its report came: the ring goes on without
		// it, and its stream has been ended so that it joins again.
		c.log.Info("ignored the report of a member declared lost", "worker", m.id, "ring", ring.id, "status", r.Status)
		return nil
	}
	switch r.Status {
	case pb.ReportStatus_PAUSED, pb.ReportStatus_FAILED:
		ring.outcomes[m] = r
		if r.Status == pb.ReportStatus_FAILED {
			ring.failures = append(ring.failures, failureReport{r, time.Now()})
			c.log.Info("member failed", "ring", ring.id, "worker", m.id, "applied", r.Applied, "timed_out", r.TimedOut,
				"secondary", r.Secondary, "waiting", time.Duration(r.WaitingNs), "waiting_for", waitedFor(ring, r),
				"frames", r.FramesReceived, "err", r.Error)
		}
		if r.Fatal {
			if ring.nonFinite == nil {
				ring.nonFinite = &nonFiniteStep{step: r.Step}
			}
			if r.NonfiniteHere {
				ring.nonFinite.workers = append(ring.nonFinite.workers, m.id)
			}
		}
		if r.Status == pb.ReportStatus_FAILED && ring.failing && ring.secondary && !r.Secondary && ring.failedChange >= 0 {
			// A root cause arrived after a consequence: record it instead.
			ch := &s.history.MembershipChanges[ring.failedChange]
			ch.Worker, ch.Step, ch.Cause = m.id, r.Applied, r.Error
			ring.cause, ring.secondary = fmt.Sprintf("%s: %s", m.id, r.Error), false
			if !r.TimedOut && ring.abortAt != nil {
				// Nothing more to wait for: abort now.
				ring.abortAt = nil
				c.abort(ring, r.Error)
			}
		}
		if r.Status == pb.ReportStatus_FAILED && !ring.failing {
			c.log.Warn("ring failed", "ring", ring.id, "worker", m.id, "waiting_for", waitedFor(ring, r), "err", r.Error)
			c.change(s, MembershipChange{Kind: "ring-failed", Worker: m.id, Ring: ring.id, Step: r.Applied, Cause: r.Error})
			ring.failedChange, ring.secondary = len(s.history.MembershipChanges)-1, r.Secondary
			ring.failing, ring.failedAt, ring.cause = true, time.Now(), fmt.Sprintf("%s: %s", m.id, r.Error)
			ring.deadline = time.After(ringEndTimeout)
			switch {
			case r.Fatal:
				// A non-finite step: every member saw the same sum and
				// stops at the same step by itself. An abort could cut
				// short a member still receiving the step's last frames,
				// which would then not say whether its own batch was at
				// fault: wait for every member's report instead.
			case r.TimedOut || r.Secondary:
				// The root cause (a member starved past its deadline, or
				// the one a broken stream points at) may be a moment
				// behind: give the others the time to report it.
				ring.abortAt = time.After(timeoutGrace)
			default:
				c.abort(ring, r.Error)
			}
		}
		if r.Status == pb.ReportStatus_PAUSED && !ring.pausing {
			ring.pausing = true // a worker asked to leave
		}
		if ring.deadline == nil {
			ring.deadline = time.After(ringEndTimeout)
		}
		return nil
	}
	if first := r.Step + 1 - uint64(max(len(r.Losses), 1)); first < ring.start {
		return c.rejectReport(s, r, fmt.Errorf("step: %d (from %d), ring %d started at %d", r.Step, first, ring.id, ring.start))
	}
	if r.NonfiniteHere {
		c.log.Warn("non-finite gradient on this worker's batch; every replica skipped the step", "worker", m.id, "step", r.Step)
	}
	if r.Rank == 0 {
		c.stepDone(s, r)
	}
	if r.HasHash {
		if err := c.checkHash(s, r); err != nil {
			return err
		}
	}
	if r.Finished {
		s.finished[m] = true
		s.trainNs = max(s.trainNs, r.TrainNs)
		s.history.WorkerSteps[m.id] += r.Step + 1 - ring.start
	}
	return nil
}

// waitedFor names the member a failure report's sender was waiting for
// (its left-hand neighbour, when its collective was waiting for a frame),
// or "" when it was not waiting: the report names that member by rank and
// address, the log by its id too.
func waitedFor(ring *ring, r *pb.WorkerReport) string {
	if r.WaitingNs == 0 || r.WaitedFor < 0 || int(r.WaitedFor) >= len(ring.members) {
		return ""
	}
	return ring.members[r.WaitedFor].id
}

// stepDone records rank 0's report of a step.
func (c *coordinator) stepDone(s *supervisor, r *pb.WorkerReport) {
	ring := s.ring
	if ring.recovering {
		d := time.Since(ring.recoveryFrom).Seconds()
		s.history.RecoverySeconds = append(s.history.RecoverySeconds, d)
		c.metrics.RecoverySeconds.Observe(d)
		ring.recovering = false
		c.log.Info("recovered", "ring", ring.id, "seconds", d)
	}
	ring.stepped, s.reported = true, r.Step+1
	// The report covers the steps of its losses (rank 0 batches them),
	// the last being r.Step; only that one can be a skipped step.
	losses := r.Losses
	if len(losses) == 0 {
		losses = []float64{r.Loss}
	}
	first := r.Step + 1 - uint64(len(losses))
	c.metrics.Steps.Add(float64(len(losses)))
	for i, l := range losses {
		if step := first + uint64(i); step == r.Step && r.Skipped {
			s.history.SkippedSteps++
			c.metrics.SkippedSteps.Inc()
		} else {
			s.losses[step], s.history.LastLoss = l, Metric(l)
			c.metrics.Loss.Set(l)
		}
	}
	c.metrics.SamplesPerSecond.Set(s.progress.rate(r.Step))
	epoch := int(r.Step / c.job.StepsPerEpoch)
	s.history.Epochs[epoch].WallSeconds = time.Duration(r.ElapsedNs).Seconds()
	s.history.Timing.Compute += float64(r.ComputeNs) / 1e6
	s.history.Timing.Allreduce += float64(r.AllreduceNs) / 1e6
	s.history.Timing.Optimizer += float64(r.OptimizerNs) / 1e6
	s.history.TimedN += float64(len(losses))
	if c.job.Deterministic {
		if int(r.FixedPointBits) < s.fixedPointBits {
			s.history.FixedPointRescales++
			c.log.Warn("fixed-point range exceeded: resolution lowered on every replica", "step", r.Step, "bits", r.FixedPointBits)
		}
		s.fixedPointBits = int(r.FixedPointBits)
	}
	s.progress.step(first, r.Step, r.Loss)
}

// epochTrainLoss is the mean training loss of an epoch's reported steps,
// those an earlier coordinator of the job recorded included; unknown when
// none was finite.
func (s *supervisor) epochTrainLoss(c *coordinator, epoch int) Metric {
	spe := int(c.job.StepsPerEpoch)
	sum, n := s.history.LossSum[epoch], s.history.LossCount[epoch]
	for _, l := range s.losses[epoch*spe : min((epoch+1)*spe, len(s.losses))] {
		if Metric(l).Known() {
			sum += l
			n++
		}
	}
	if n == 0 {
		return Unknown
	}
	return Metric(sum / float64(n))
}

// checkHash compares the replicas' weights once every member of the ring
// has reported the step.
func (c *coordinator) checkHash(s *supervisor, r *pb.WorkerReport) error {
	ring := s.ring
	h, ok := s.hashes[r.Step]
	if !ok {
		h = &hashRound{ring: ring.id, hashes: map[int]uint64{}}
		s.hashes[r.Step] = h
	}
	if _, dup := h.hashes[int(r.Rank)]; dup {
		return fmt.Errorf("coordinator: %v reported the hash of step %d twice", ring.members[r.Rank], r.Step)
	}
	h.hashes[int(r.Rank)] = r.WeightsHash
	if len(h.hashes) < len(ring.members) {
		return nil
	}
	delete(s.hashes, r.Step)
	for rank := 1; rank < len(ring.members); rank++ {
		if h.hashes[rank] != h.hashes[0] {
			return fmt.Errorf("coordinator: replicas diverged after step %d: %v has weights hash %016x, %v has %016x",
				r.Step, ring.members[0], h.hashes[0], ring.members[rank], h.hashes[rank])
		}
	}
	s.history.ReplicaChecks++
	return nil
}

// upload handles a state upload: the starting state of a new ring, a
// checkpoint, an epoch's end for evaluation, the final state.
func (c *coordinator) upload(s *supervisor, st *wire.State) error {
	h := st.Header
	if h.Base {
		c.states.set(h.Generation, st)
		return nil
	}
	if s.ring == nil || h.Generation != s.ring.id {
		return nil
	}
	if h.Checkpoint || h.Final {
		s.latest = st
		if c.cfg.CheckpointDir != "" {
			hist := s.snapshot(c.job.StepsPerEpoch, h.Step)
			hist.FixedPointBits = int(h.FixedPointBits)
			path, err := c.saveCheckpoint(st, hist)
			if err != nil {
				return err
			}
			s.history.Checkpoints = append(s.history.Checkpoints, path)
			s.newestCheckpoint = path
		}
	}
	if h.Final {
		s.final = st
	}
	if h.EpochEnd && !h.Final {
		epoch := int(h.Epoch)
		s.history.Epochs[epoch].Epoch, s.history.Epochs[epoch].Step = epoch+1, h.Step
		s.pending++
		s.evals.Add(1)
		go func() {
			defer s.evals.Done()
			loss, acc := c.evaluate(st.Params)
			c.post(evaluated{epoch: epoch, loss: loss, acc: acc})
		}()
	}
	return nil
}

// latestState is the newest full state the coordinator holds.
func (c *coordinator) latestState(s *supervisor) *wire.State {
	if s.latest != nil {
		return s.latest
	}
	return c.initial
}

// evaluate returns the test loss and accuracy of the parameters.
func (c *coordinator) evaluate(params []float64) (loss, acc float64) {
	m, err := nn.New(c.spec)
	if err != nil {
		panic(err) // the spec was validated when the job was built
	}
	copy(m.Params(), params)
	return evaluateInChunks(m, c.test, c.evalRows)
}

// stopAll queues a Stop for every worker and waits, briefly, for the Join
// handlers to deliver it.
func (c *coordinator) stopAll(st *pb.Stop) {
	c.joinMu.Lock()
	c.ending = true
	c.joinMu.Unlock()
	in := &pb.Instruction{Kind: &pb.Instruction_Stop{Stop: st}}
	for _, m := range c.registry.all() {
		m.send(in)
	}
	delivered := make(chan struct{})
	go func() {
		c.joins.Wait()
		close(delivered)
	}()
	select {
	case <-delivered:
	case <-time.After(stopDelivery):
	}
}

// fail ends a failed job: every worker is told why, and the summary says
// what the training did and why it failed.
func (c *coordinator) fail(s *supervisor, err error) error {
	s.progress.abort()
	c.log.Error("job failed", "err", err)
	sum := c.summary(s, StatusFailed)
	sum.Error = err.Error()
	if werr := c.writeSummary(sum); werr != nil {
		c.log.Error("cannot write the summary", "err", werr)
	}
	c.stopAll(&pb.Stop{Reason: err.Error(), Failed: true})
	close(c.done)
	return err
}

// rejectReport handles a report that contradicts the job's state: the
// report is dropped and, when it names a worker of the job, that worker is
// treated as lost (a replica that misreports cannot be trusted to hold the
// right weights); the job goes on without it.
func (c *coordinator) rejectReport(s *supervisor, r *pb.WorkerReport, err error) error {
	c.log.Warn("rejected a report", "worker", r.WorkerId, "err", err)
	if m := c.registry.get(r.WorkerId); m != nil {
		return c.memberLost(s, m, fmt.Errorf("sent an invalid report: %w", err))
	}
	return nil
}

// abort tells every member of ring r to give it up.
func (c *coordinator) abort(r *ring, reason string) {
	in := &pb.Instruction{Kind: &pb.Instruction_Abort{Abort: &pb.Abort{Generation: r.id, Reason: reason}}}
	for _, m := range r.members {
		m.send(in)
	}
}
