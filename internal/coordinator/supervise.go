package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"ringtrain/internal/nn"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// The events the supervise loop handles.
type (
	event  any
	joined struct{ m *member }
	lost   struct {
		m   *member
		err error
	}
	reported  struct{ r *pb.WorkerReport }
	uploaded  struct{ st *wire.State }
	evaluated struct {
		epoch     int
		loss, acc float64
	}
	exited struct {
		id  string
		pid int
		err error
	}
	traced struct {
		rank    int32
		events  []*pb.TraceEvent
		dropped uint64
	}
)

// errorGrace is how long a worker's error report waits for a more telling
// root cause, such as the loss of the worker it was talking to.
const errorGrace = 2 * time.Second

// stopDelivery bounds the wait for Stop instructions to reach the workers.
const stopDelivery = 3 * time.Second

// supervisor is the state the supervise loop keeps.
type supervisor struct {
	ranked   []*member
	progress *progress

	hashes        map[uint64]*hashRound
	replicaChecks int
	// hashedUpTo is, by rank, one past the last step whose hash the rank
	// reported; hashes must come in step order.
	hashedUpTo []uint64

	finished  []bool
	nFinished int
	trainNs   uint64

	lastLoss            float64
	epochLoss           []float64
	epochSteps          []int
	epochs              []EpochMetrics
	evals               sync.WaitGroup
	pendingEvals        int
	final               *wire.State
	computeNs, reduceNs uint64
	optimizerNs, timedN uint64
	pendingErr          error
	graceTimer          <-chan time.Time
	// fixedPointBits is the deterministic mode's current resolution,
	// rescales how often it was lowered.
	fixedPointBits, rescales int
	// traces holds the workers' timelines, by rank, when tracing.
	traces  []*traced
	nTraces int
}

// hashRound collects the replicas' weight hashes of one step.
type hashRound struct {
	hashes []uint64
	n      int
}

// supervise runs the job's event loop until it completes or fails.
func (c *coordinator) supervise(ctx context.Context) (*Summary, error) {
	world := int(c.job.WorldSize)
	epochs := int((c.job.MaxSteps + c.job.StepsPerEpoch - 1) / c.job.StepsPerEpoch)
	s := &supervisor{
		fixedPointBits: int(c.job.FixedPointBits),
		progress:       newProgress(c.cfg.Progress, c.job, c.globalBatch()),
		hashes:         make(map[uint64]*hashRound),
		finished:       make([]bool, world),
		epochLoss:      make([]float64, epochs),
		epochSteps:     make([]int, epochs),
		epochs:         make([]EpochMetrics, epochs),
	}
	defer s.evals.Wait()
	joinTimer := time.NewTimer(c.cfg.JoinTimeout)
	defer joinTimer.Stop()
	joinDeadline := joinTimer.C
	for {
		var err error
		select {
		case <-ctx.Done():
			err = fmt.Errorf("coordinator: interrupted: %w", context.Cause(ctx))
		case <-joinDeadline:
			err = c.missingWorkers()
		case <-s.graceTimer:
			err = s.pendingErr
		case e := <-c.events:
			err = c.handle(s, e)
			if s.ranked != nil {
				joinDeadline = nil
			}
		}
		if err != nil {
			return nil, c.fail(s, err)
		}
		if s.ranked != nil && s.nFinished == world && s.final != nil && s.pendingEvals == 0 && (!c.job.Trace || s.nTraces == world) {
			return c.finish(s)
		}
	}
}

// handle applies one event.
func (c *coordinator) handle(s *supervisor, e event) error {
	switch e := e.(type) {
	case joined:
		if c.members.complete() && s.ranked == nil {
			c.assign(s)
		}
	case lost:
		if e.m.rank < 0 {
			c.members.remove(e.m)
			c.log.Warn("worker left before the job started", "worker", e.m.id)
			return nil
		}
		if s.finished[e.m.rank] {
			return nil
		}
		return fmt.Errorf("coordinator: lost %v: %w", e.m, e.err)
	case exited:
		if s.ranked != nil {
			for _, m := range s.ranked {
				if m.id == e.id && s.finished[m.rank] {
					return nil
				}
			}
		}
		return fmt.Errorf("coordinator: local worker %s (pid %d) exited: %v", e.id, e.pid, e.err)
	case reported:
		return c.report(s, e.r)
	case uploaded:
		c.upload(s, e.st)
	case traced:
		if s.traces == nil {
			s.traces = make([]*traced, len(s.ranked))
		}
		if s.traces[e.rank] != nil {
			return fmt.Errorf("coordinator: %v uploaded its trace twice", s.ranked[e.rank])
		}
		s.traces[e.rank] = &e
		s.nTraces++
	case evaluated:
		s.pendingEvals--
		m := &s.epochs[e.epoch]
		m.TestLoss, m.TestAccuracy = e.loss, e.acc
		if n := s.epochSteps[e.epoch]; n > 0 {
			m.TrainLoss = s.epochLoss[e.epoch] / float64(n)
		}
		s.progress.epochEnd(*m)
	}
	return nil
}

// assign gives every worker its rank and the job.
func (c *coordinator) assign(s *supervisor) {
	s.ranked = c.members.assign()
	var addrs, ids []string
	for _, m := range s.ranked {
		addrs = append(addrs, m.addr)
		ids = append(ids, m.id)
	}
	for _, m := range s.ranked {
		a := &pb.Assignment{Job: c.job, Generation: 1, Rank: int32(m.rank), RingAddrs: addrs, WorkerIds: ids}
		m.instructions <- &pb.Instruction{Kind: &pb.Instruction_Assignment{Assignment: a}}
		c.log.Info("assigned", "worker", m.id, "rank", m.rank, "ring_addr", m.addr)
	}
	s.progress.start()
}

// missingWorkers is the error of a join timeout: who joined, who is missing.
func (c *coordinator) missingWorkers() error {
	ids := c.members.ids()
	slices.SortFunc(ids, naturalCompare)
	msg := fmt.Sprintf("coordinator: waited %v for %d workers, %d joined", c.cfg.JoinTimeout, c.job.WorldSize, len(ids))
	if len(ids) > 0 {
		msg += " (" + strings.Join(ids, ", ") + ")"
	}
	if c.local != nil {
		var missing []string
		for _, id := range c.local.ids() {
			if !slices.Contains(ids, id) {
				missing = append(missing, id)
			}
		}
		msg += "; missing: " + strings.Join(missing, ", ")
	} else {
		msg += fmt.Sprintf("; missing %d (are they started, with -coordinator %s?)", int(c.job.WorldSize)-len(ids), c.addr)
	}
	return errors.New(msg)
}

// report records a worker's step report.
func (c *coordinator) report(s *supervisor, r *pb.WorkerReport) error {
	if s.ranked == nil {
		return fmt.Errorf("coordinator: report from rank %d before the job started", r.Rank)
	}
	m := s.ranked[r.Rank]
	if r.Error != "" {
		if s.pendingErr == nil {
			s.pendingErr = fmt.Errorf("coordinator: %v failed at step %d: %s", m, r.Step, r.Error)
			s.graceTimer = time.After(errorGrace)
		}
		return nil
	}
	if r.Rank == 0 {
		epoch := int(r.Step / c.job.StepsPerEpoch)
		s.epochs[epoch].WallSeconds = time.Duration(r.ElapsedNs).Seconds()
		s.lastLoss = r.Loss
		s.epochLoss[epoch] += r.Loss
		s.epochSteps[epoch]++
		s.computeNs += r.ComputeNs
		s.reduceNs += r.AllreduceNs
		s.optimizerNs += r.OptimizerNs
		s.timedN++
		if c.job.Deterministic {
			if int(r.FixedPointBits) < s.fixedPointBits {
				s.rescales++
				c.log.Warn("fixed-point range exceeded: resolution lowered on every replica", "step", r.Step, "bits", r.FixedPointBits)
			}
			s.fixedPointBits = int(r.FixedPointBits)
		}
		s.progress.step(r.Step, r.Loss)
	}
	if r.HasHash {
		if err := c.checkHash(s, r); err != nil {
			return err
		}
	}
	if r.Finished && !s.finished[r.Rank] {
		s.finished[r.Rank] = true
		s.nFinished++
		s.trainNs = max(s.trainNs, r.TrainNs)
	}
	return nil
}

// checkHash compares the replicas' weights once every rank has reported
// the step.
func (c *coordinator) checkHash(s *supervisor, r *pb.WorkerReport) error {
	world := len(s.ranked)
	if s.hashedUpTo == nil {
		s.hashedUpTo = make([]uint64, world)
	}
	if r.Step < s.hashedUpTo[r.Rank] {
		return fmt.Errorf("coordinator: %v reported the hash of step %d after that of step %d", s.ranked[r.Rank], r.Step, s.hashedUpTo[r.Rank]-1)
	}
	s.hashedUpTo[r.Rank] = r.Step + 1
	h, ok := s.hashes[r.Step]
	if !ok {
		h = &hashRound{hashes: make([]uint64, world)}
		s.hashes[r.Step] = h
	}
	h.hashes[r.Rank] = r.WeightsHash
	h.n++
	if h.n < world {
		return nil
	}
	delete(s.hashes, r.Step)
	for rank := 1; rank < world; rank++ {
		if h.hashes[rank] != h.hashes[0] {
			return fmt.Errorf("coordinator: replicas diverged after step %d: %v has weights hash %016x, %v has %016x",
				r.Step, s.ranked[0], h.hashes[0], s.ranked[rank], h.hashes[rank])
		}
	}
	s.replicaChecks++
	return nil
}

// upload handles rank 0's state: epoch-end parameters are evaluated on the
// test set in the background; the final state is kept for the checkpoint.
func (c *coordinator) upload(s *supervisor, st *wire.State) {
	h := st.Header
	if h.Final {
		s.final = st
		return
	}
	epoch := int(h.Epoch)
	s.epochs[epoch].Epoch, s.epochs[epoch].Step = epoch+1, h.Step
	s.pendingEvals++
	s.evals.Add(1)
	go func() {
		defer s.evals.Done()
		loss, acc := c.evaluate(st.Params)
		c.post(evaluated{epoch: epoch, loss: loss, acc: acc})
	}()
}

// evaluate returns the test loss and accuracy of the parameters.
func (c *coordinator) evaluate(params []float64) (loss, acc float64) {
	m, err := nn.New(c.spec)
	if err != nil {
		panic(err) // the spec was validated when the job was built
	}
	copy(m.Params(), params)
	return m.Evaluate(c.test)
}

// stopAll queues a Stop for every worker and waits, briefly, for the Join
// handlers to deliver it.
func (c *coordinator) stopAll(st *pb.Stop) {
	c.joinMu.Lock()
	c.ending = true
	c.joinMu.Unlock()
	in := &pb.Instruction{Kind: &pb.Instruction_Stop{Stop: st}}
	for _, m := range c.members.all() {
		select {
		case m.instructions <- in:
		default:
		}
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

// fail ends a failed job: every worker is told why.
func (c *coordinator) fail(s *supervisor, err error) error {
	s.progress.abort()
	c.log.Error("job failed", "err", err)
	c.stopAll(&pb.Stop{Reason: err.Error(), Failed: true})
	close(c.done)
	return err
}
