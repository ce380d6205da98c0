package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"ringtrain/internal/control"
	"ringtrain/internal/membership"
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
		// ring is the newest ring its worker was placed in.
		ring    uint32
		rank    int32
		events  []*pb.TraceEvent
		dropped uint64
	}
	gossip struct{ e membership.Event }
)

// Timing of the supervise loop.
const (
	// timeoutGrace is how long the abort of a ring waits after a member's
	// all-reduce passed its deadline, or broke because its neighbour's
	// did: the other members, stuck too, pass theirs within it and report
	// how far they got, which tells who was starved first.
	timeoutGrace = 500 * time.Millisecond
	// stopDelivery bounds the wait for Stop instructions to reach the
	// workers. The wait ends as soon as every Join handler has delivered
	// its Stop, so the bound costs nothing when they do; 3 s was too short
	// on a 2-core machine under a load of 15 (TestNonFiniteGradientPolicy:
	// a worker missed the job's reason and waited out its own deadline).
	stopDelivery = 10 * time.Second
	// ringEndTimeout bounds the wait for a ring's members to report how it
	// ended; a member that does not is treated as lost.
	ringEndTimeout = 15 * time.Second
)

// supervisor drives the job's ring lifecycle (a control.Machine): it turns
// what happens into the machine's events and carries out its actions,
// with the reporter recording what they mean for the summary.
type supervisor struct {
	m   *control.Machine
	rep *reporter
	// byKey holds the members the machine knows and has not dropped or
	// released; ended the keys whose stream end it was told.
	byKey map[uint64]*member
	ended map[uint64]bool
	// ring is the current ring's members by rank.
	ring []*member
	// timers are the machine's armed timers.
	timers map[control.Timer]<-chan time.Time
	// evals are the evaluations running; kept the epochs' states kept
	// for evaluation after the training (Job.Evaluations), keptBytes
	// their parameters' size.
	evals     sync.WaitGroup
	kept      []keptEvaluation
	keptBytes int
	// report, upload and trace are the report, upload and timeline being
	// handled.
	report *pb.WorkerReport
	upload *wire.State
	trace  *traced
	// unreachable are members an instruction could not reach.
	unreachable []*member
	// latest is the newest full state rank 0 uploaded (checkpoints), and
	// newestCheckpoint the file it went to; final the job's final state.
	latest           *wire.State
	newestCheckpoint string
	final            *wire.State
	// outcome is how the job ended, once the machine says.
	outcome *control.Finish
}

// newSupervisor returns the supervisor of the job, its machine started.
func (c *coordinator) newSupervisor() *supervisor {
	h := newHistory(c.epochs())
	if c.resumed != nil {
		h = *c.resumed
	}
	var prior []string
	for _, ch := range h.MembershipChanges {
		if ch.Kind == "lost" {
			prior = append(prior, fmt.Sprintf("%s at step %d (%s)", ch.Worker, ch.Step, ch.Cause))
		}
	}
	unit := 1
	if c.job.Deterministic {
		unit = int(c.job.MicroBatch)
	}
	s := &supervisor{rep: newReporter(c, h), byKey: map[uint64]*member{}, ended: map[uint64]bool{}, timers: map[control.Timer]<-chan time.Time{},
		m: control.New(control.Config{World: c.cfg.world(), MinWorkers: c.cfg.MinWorkers, MaxWorkers: c.maxWorkers(),
			GlobalBatch: int(c.job.GlobalBatch), Unit: unit, RingFailures: c.cfg.RingFailures,
			MaxSteps: c.job.MaxSteps, StartStep: c.startStep, Checkpointing: c.cfg.CheckpointDir != "", Trace: c.job.Trace,
			JoinTimeout: c.cfg.JoinTimeout, RingEndTimeout: ringEndTimeout, TimeoutGrace: timeoutGrace, CompleteGrace: c.cfg.CompleteGrace,
			Lost: prior})}
	if c.startStep == c.job.MaxSteps {
		c.log.Info("the job's newest checkpoint holds its last step: writing its outputs, releasing the workers that come back",
			"step", c.startStep, "for", c.cfg.CompleteGrace)
	}
	c.apply(s, s.m.Start(time.Since(c.started)))
	return s
}

// supervise runs the job's event loop until it completes or fails.
func (c *coordinator) supervise(ctx context.Context) (*Summary, error) {
	s := c.newSupervisor()
	defer s.evals.Wait()
	shutdown := c.cfg.Shutdown
	for s.outcome == nil {
		var err error
		select {
		case <-ctx.Done():
			err = c.handle(s, control.Interrupted{Cause: context.Cause(ctx)})
		case <-s.timers[control.JoinTimer]:
			err = c.handle(s, control.Fired{Timer: control.JoinTimer})
		case <-s.timers[control.RingEndTimer]:
			err = c.handle(s, control.Fired{Timer: control.RingEndTimer})
		case <-s.timers[control.AbortTimer]:
			err = c.handle(s, control.Fired{Timer: control.AbortTimer})
		case <-s.timers[control.GraceTimer]:
			err = c.handle(s, control.Fired{Timer: control.GraceTimer})
		case e := <-c.events:
			err = c.dispatch(s, e)
		case e := <-c.gossipEvents():
			err = c.dispatch(s, gossip{e})
		case <-shutdown:
			shutdown = nil
			c.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
			err = c.handle(s, control.Shutdown{})
		}
		if err != nil {
			return nil, c.fail(s, err)
		}
	}
	switch o := s.outcome; o.Outcome {
	case control.Completed:
		if s.final == nil {
			s.final = c.initial // the job was complete when it started
		}
		return c.finish(s)
	case control.ShutDown:
		return nil, c.shutdownNow(s, o.Step)
	default:
		return nil, c.fail(s, c.failure(o.Err))
	}
}

// failure is the error of a job the machine gave up on.
func (c *coordinator) failure(err error) error {
	var few *control.TooFewWorkers
	if errors.As(err, &few) {
		return c.tooFewWorkers(few)
	}
	return fmt.Errorf("coordinator: %w", err)
}

// gossipEvents delivers the gossip node's events, or nothing without one.
func (c *coordinator) gossipEvents() <-chan membership.Event {
	if c.node == nil {
		return nil
	}
	return c.node.Events()
}

// dispatch turns one of the loop's events into the machine's; the error
// is one of the coordinator's own (a checkpoint it cannot write).
func (c *coordinator) dispatch(s *supervisor, e event) error {
	switch e := e.(type) {
	case joined:
		c.log.Info("worker joined", "worker", e.m.id, "ring_addr", e.m.addr, "host", e.m.host, "pid", e.m.pid)
		s.byKey[e.m.key] = e.m
		return c.handle(s, control.Joined{Member: control.Member{Key: e.m.key, ID: e.m.id, Addr: e.m.addr}})
	case lost:
		return c.handle(s, control.Lost{Key: e.m.key, Cause: e.err})
	case gossip:
		if e.e.Kind == membership.Failed || e.e.Kind == membership.Left {
			if m := c.registry.get(e.e.Name); m != nil {
				return c.handle(s, control.Lost{Key: m.key, Cause: fmt.Errorf("gossip: the node %s", e.e.Kind)})
			}
		}
	case exited:
		if m := c.registry.get(e.id); m != nil {
			return c.handle(s, control.Lost{Key: m.key, Cause: fmt.Errorf("its process (pid %d) exited: %v", e.pid, e.err)})
		}
		if e.err != nil {
			// It failed before joining (its log says why): before the
			// first ring, waiting for it is pointless.
			return c.handle(s, control.ExitedUnjoined{Err: fmt.Errorf("local worker %s (pid %d) exited before joining: %v; its log above says why", e.id, e.pid, e.err)})
		}
	case reported:
		s.report = e.r
		defer func() { s.report = nil }()
		return c.handle(s, control.Reported{Report: controlReport(e.r)})
	case uploaded:
		h := e.st.Header
		if h.Base {
			c.states.set(h.Generation, e.st)
			return nil
		}
		s.upload = e.st
		defer func() { s.upload = nil }()
		return c.handle(s, control.Uploaded{Ring: h.Generation, Step: h.Step, Epoch: int(h.Epoch),
			Checkpoint: h.Checkpoint, EpochEnd: h.EpochEnd, Final: h.Final})
	case evaluated:
		m := s.rep.evaluated(e)
		if s.latest != nil && s.latest.Header.Step >= m.Step && s.newestCheckpoint != "" {
			// The checkpoint went out before its epoch's evaluation came
			// back: its history gets the evaluation too.
			if err := saveHistory(s.newestCheckpoint, s.rep.snapshot(s.latest.Header.Step, s.m.Rings())); err != nil {
				return err
			}
		}
		return c.handle(s, control.Evaluated{})
	case traced:
		s.trace = &e
		defer func() { s.trace = nil }()
		return c.handle(s, control.Traced{Ring: e.ring, Rank: int(e.rank)})
	}
	return nil
}

// handle hands an event to the machine and carries out its actions. The
// machine first learns of the members whose stream has ended, so that no
// new ring takes them in.
func (c *coordinator) handle(s *supervisor, e control.Event) error {
	for key, m := range s.byKey {
		if !s.ended[key] && m.ended.Load() {
			s.ended[key] = true
			if err := c.apply(s, s.m.Handle(time.Since(c.started), control.StreamEnded{Key: key})); err != nil {
				return err
			}
		}
	}
	if err := c.apply(s, s.m.Handle(time.Since(c.started), e)); err != nil {
		return err
	}
	// A member that does not read its instructions is lost.
	for len(s.unreachable) > 0 && s.outcome == nil {
		m := s.unreachable[0]
		s.unreachable = s.unreachable[1:]
		if err := c.apply(s, s.m.Handle(time.Since(c.started), control.Lost{Key: m.key, Cause: errors.New("not reading its instructions")})); err != nil {
			return err
		}
	}
	s.unreachable = nil
	return nil
}

// send queues an instruction for m, noting m when it cannot take it.
func (s *supervisor) send(m *member, in *pb.Instruction) {
	if !m.send(in) {
		s.unreachable = append(s.unreachable, m)
	}
}

// apply carries out the machine's actions, in order.
func (c *coordinator) apply(s *supervisor, actions []control.Action) error {
	for _, a := range actions {
		if err := c.act(s, a); err != nil {
			return err
		}
	}
	return nil
}

// act carries out one action of the machine.
func (c *coordinator) act(s *supervisor, a control.Action) error {
	switch a := a.(type) {
	case control.SetTimer:
		s.timers[a.Timer] = time.After(a.After)
	case control.StopTimer:
		delete(s.timers, a.Timer)
	case control.StartRing:
		c.startRing(s, a)
	case control.StoreState:
		c.states.set(a.Ring, c.latestState(s))
	case control.Pause:
		if a.Checkpoint {
			c.log.Info("shutting down: pausing the ring for a checkpoint", "ring", a.Ring)
		} else {
			c.log.Info("pausing the ring", "ring", a.Ring, "why", a.Why)
		}
		in := &pb.Instruction{Kind: &pb.Instruction_Pause{Pause: &pb.Pause{Generation: a.Ring, Checkpoint: a.Checkpoint}}}
		for _, mb := range a.To {
			if m := s.byKey[mb.Key]; m != nil {
				s.send(m, in)
			}
		}
	case control.Abort:
		in := &pb.Instruction{Kind: &pb.Instruction_Abort{Abort: &pb.Abort{Generation: a.Ring, Reason: a.Reason}}}
		for _, mb := range a.To {
			if m := s.byKey[mb.Key]; m != nil {
				s.send(m, in)
			}
		}
	case control.Release:
		if m := s.byKey[a.Member.Key]; m != nil {
			c.registry.remove(m)
			m.send(&pb.Instruction{Kind: &pb.Instruction_Stop{Stop: &pb.Stop{}}})
			m.rank = -1
			delete(s.byKey, m.key)
		}
	case control.Drop:
		if m := s.byKey[a.Member.Key]; m != nil {
			c.registry.remove(m)
			m.drop(a.Cause)
			m.rank = -1
			delete(s.byKey, m.key)
		}
		switch a.Reason {
		case control.WaitingLeft:
			c.log.Warn("waiting worker left", "worker", a.Member.ID, "err", a.Cause)
		case control.MemberLost:
			c.log.Warn("lost a ring member", "worker", a.Member.ID, "rank", a.Rank, "err", a.Cause)
		}
	case control.Change:
		s.rep.change(MembershipChange{Kind: a.Kind, Worker: a.Worker, Ring: a.Ring, Step: a.Step, Cause: a.Cause}, a.Amend)
	case control.MemberFailed:
		r := s.report
		c.log.Info("member failed", "ring", a.Ring, "worker", a.Worker, "applied", r.Applied, "timed_out", r.TimedOut,
			"secondary", r.Secondary, "waiting", time.Duration(r.WaitingNs), "waiting_for", a.WaitingFor,
			"frames", r.FramesReceived, "err", r.Error)
	case control.RingFailed:
		if a.Reported {
			c.log.Warn("ring failed", "ring", a.Ring, "worker", a.Worker, "waiting_for", a.WaitingFor, "err", a.Cause)
		}
	case control.LateLoss:
		c.log.Warn("lost a member after the last step", "worker", a.Member.ID, "err", a.Cause)
	case control.IgnoredReport:
		if a.Lost {
			// Declared lost before its report came: the ring goes on
			// without it, and its stream has been ended so that it joins
			// again.
			c.log.Info("ignored the report of a member declared lost", "worker", a.Worker, "ring", a.Ring, "status", s.report.Status)
		} else {
			c.log.Debug("report from another ring", "worker", a.Worker, "ring", a.Ring)
		}
	case control.RejectedReport:
		c.log.Warn("rejected a report", "worker", a.Worker, "err", a.Err)
	case control.StepReport:
		c.stepReported(s, a)
	case control.TraceIn:
		s.rep.traced(*s.trace)
	case control.ReplicasAgree:
		s.rep.history.ReplicaChecks++
	case control.MemberFinished:
		s.rep.finished(a.Worker, a.Steps, s.report.TrainNs)
	case control.RingEnded:
		s.rep.ringEnded(a.Rollback, a.Credits)
		if a.Straggler != "" {
			c.log.Warn("straggler", "ring", a.Ring, "worker", a.Straggler, "cause", a.StragglerCause)
		}
		c.log.Info("ring ended", "ring", a.Ring, "failed", a.Failed, "committed", a.Committed, "survivors", a.Survivors)
	case control.Rewind:
		s.rep.rewind(a.Step)
	case control.WaitForJoins:
		s.ring = nil
		c.log.Warn("too few workers; waiting for joins", "have", a.Have, "min", a.Min, "timeout", c.cfg.JoinTimeout)
	case control.Resuming:
		c.log.Warn("resuming with the workers that came back", "have", a.Have, "asked_for", c.cfg.world(), "waited", c.cfg.JoinTimeout)
	case control.Checkpoint:
		if a.Final {
			c.evaluateKept(s)
		}
		return c.checkpoint(s, a)
	case control.Evaluate:
		s.rep.evaluating(a.Epoch, a.Step)
		c.evaluateEpoch(s, a.Epoch, s.upload.Params)
	case control.Finish:
		s.outcome = &a
	}
	return nil
}

// startRing assigns every member of a new ring its place.
func (c *coordinator) startRing(s *supervisor, a control.StartRing) {
	var addrs, ids []string
	s.ring = nil
	for _, m := range s.byKey {
		m.rank = -1
	}
	for _, p := range a.Places {
		m := s.byKey[p.Member.Key]
		m.rank = p.Rank
		s.ring = append(s.ring, m)
		addrs, ids = append(addrs, m.addr), append(ids, m.id)
	}
	for _, p := range a.Places {
		m := s.ring[p.Rank]
		as := &pb.Assignment{Job: c.job, Generation: a.Ring, Rank: int32(p.Rank), RingAddrs: addrs, WorkerIds: ids,
			StartStep: a.Start, FirstLane: uint32(p.Lanes.First), LaneCount: uint32(p.Lanes.Count), GossipAddr: c.gossipAddr(),
			FetchState: p.FetchState, RestoreBackup: p.RestoreBackup, UploadState: p.UploadState}
		s.send(m, &pb.Instruction{Kind: &pb.Instruction_Assignment{Assignment: as}})
		c.log.Info("assigned", "worker", m.id, "ring", a.Ring, "rank", p.Rank, "start_step", a.Start,
			"lanes", fmt.Sprintf("%d+%d", p.Lanes.First, p.Lanes.Count), "fetch_state", p.FetchState, "rollback", p.RestoreBackup)
	}
	s.rep.ringStarted(a.First, a.Start, ids)
}

// stepReported records a member's accepted report of steps.
func (c *coordinator) stepReported(s *supervisor, a control.StepReport) {
	r := s.report
	if r.NonfiniteHere {
		c.log.Warn("non-finite gradient on this worker's batch; every replica skipped the step", "worker", r.WorkerId, "step", r.Step)
	}
	if a.Rank != 0 {
		return
	}
	if a.Recovered {
		s.rep.recovered(a.Recovery)
		c.log.Info("recovered", "ring", a.Ring, "seconds", a.Recovery.Seconds())
	}
	s.rep.stepDone(r)
	if c.job.Deterministic && s.rep.rescaled(int(r.FixedPointBits)) {
		c.log.Warn("fixed-point range exceeded: resolution lowered on every replica", "step", r.Step, "bits", r.FixedPointBits)
	}
}

// checkpoint keeps rank 0's upload as the newest full state, and writes it
// to the checkpoint folder when there is one.
func (c *coordinator) checkpoint(s *supervisor, a control.Checkpoint) error {
	st := s.upload
	s.latest = st
	if c.cfg.CheckpointDir != "" {
		hist := s.rep.snapshot(st.Header.Step, s.m.Rings())
		hist.FixedPointBits = int(st.Header.FixedPointBits)
		path, err := c.saveCheckpoint(st, hist)
		if err != nil {
			return err
		}
		s.rep.history.Checkpoints = append(s.rep.history.Checkpoints, path)
		s.newestCheckpoint = path
	}
	if a.Final {
		s.final = st
	}
	return nil
}

// tooFewWorkers is the error of a join timeout: who joined, who is
// missing, who was lost.
func (c *coordinator) tooFewWorkers(e *control.TooFewWorkers) error {
	msg := fmt.Sprintf("coordinator: waited %v for %d workers, %d joined", e.Waited.Round(time.Second), e.Need, len(e.Joined))
	if len(e.Joined) > 0 {
		msg += " (" + strings.Join(e.Joined, ", ") + ")"
	}
	if c.local != nil {
		// Workers this coordinator started itself: name them, not a
		// flag the user has nothing to do with.
		var missing []string
		for _, id := range c.local.ids() {
			if !slices.Contains(e.Joined, id) {
				missing = append(missing, id)
			}
		}
		msg += "; missing: " + strings.Join(missing, ", ")
	} else {
		msg += fmt.Sprintf("; missing %d (are they started, with -coordinator %s?)", e.Need-len(e.Joined), c.addr)
	}
	if len(e.Lost) > 0 {
		msg += "; lost: " + strings.Join(e.Lost, ", ")
	}
	return errors.New(msg)
}

// ErrShutdown is returned by Run when the coordinator was shut down
// (Config.Shutdown) before the job ended; the workers wait for it to come
// back, and a coordinator started on the same checkpoint folder resumes.
var ErrShutdown = errors.New("coordinator: shut down before the job ended")

// shutdownNow ends the coordinator without releasing the workers; the
// training stands at step.
func (c *coordinator) shutdownNow(s *supervisor, step uint64) error {
	s.rep.progress.abort()
	c.joinMu.Lock()
	c.ending = true
	c.joinMu.Unlock()
	close(c.done)
	if n := len(s.rep.history.Checkpoints); n > 0 {
		c.log.Info("shut down", "step", step, "checkpoint", s.rep.history.Checkpoints[n-1])
		return fmt.Errorf("%w: at step %d, checkpoint %s", ErrShutdown, step, s.rep.history.Checkpoints[n-1])
	}
	c.log.Info("shut down", "step", step)
	return fmt.Errorf("%w: at step %d, no checkpoint", ErrShutdown, step)
}

// heldOutName names the set the job evaluates on.
func (c *coordinator) heldOutName() string {
	if c.cfg.Folds > 1 {
		return "validation"
	}
	return "test"
}
