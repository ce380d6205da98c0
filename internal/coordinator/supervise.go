package coordinator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

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
	// how far they got, which tells who was starved first (see straggler).
	timeoutGrace = 500 * time.Millisecond
	// stopDelivery bounds the wait for Stop instructions to reach the
	// workers.
	stopDelivery = 3 * time.Second
	// ringEndTimeout bounds the wait for a ring's members to report how it
	// ended; a member that does not is treated as lost.
	ringEndTimeout = 15 * time.Second
)

// ring is a generation of the job: its members by rank, their lanes, the
// step it started at, and how it is ending.
type ring struct {
	id      uint32
	members []*member
	lanes   []laneRange
	start   uint64
	// Ending: pausing (a worker joins or leaves) or failing (a member was
	// lost); outcomes collects what the members applied; gone are members
	// lost on the way.
	pausing, failing bool
	failedAt         time.Time
	deadline         <-chan time.Time
	// abortAt, when set, is when to abort a ring that failed on a deadline.
	abortAt  <-chan time.Time
	outcomes map[*member]*pb.WorkerReport
	gone     map[*member]error
	// recovering marks a ring that replaced a failed one, until its first
	// step is reported.
	recovering   bool
	recoveryFrom time.Time
	// cause is why the ring failed, as first reported; stepped whether
	// it completed a step; nonFinite the error of a step whose gradient
	// was not finite under the stop policy, naming its workers.
	cause     string
	stepped   bool
	nonFinite *nonFiniteStep
	// failedChange indexes the ring-failed membership change (−1 for
	// none); secondary says its cause followed another failure.
	failedChange int
	secondary    bool
	// failures holds the members' failure reports, in the order they
	// arrived, with when.
	failures []failureReport
}

// failureReport is a member's report of a failed ring and when it came.
type failureReport struct {
	rep *pb.WorkerReport
	at  time.Time
}

// nonFiniteStep is a step that stopped the job: its gradient was NaN or
// ±Inf on the workers named.
type nonFiniteStep struct {
	step    uint64
	workers []string
}

func (e *nonFiniteStep) Error() string {
	who := "a worker"
	if len(e.workers) > 0 {
		who = strings.Join(slices.Sorted(slices.Values(e.workers)), ", ")
	}
	return fmt.Sprintf("coordinator: the gradient of step %d was not finite (NaN or ±Inf) on %s; each worker's log names the sample ids of its batch "+
		"(in deterministic mode a gradient beyond the fixed-point range counts as not finite) "+
		"(a diverging learning rate or corrupt data are the usual causes; -nonfinite skip skips such steps instead)", e.step, who)
}

// supervisor is the state the supervise loop keeps.
type supervisor struct {
	progress *progress
	ring     *ring
	genSeq   uint32
	// committed is the number of steps every replica holds: where the
	// next ring starts.
	committed uint64
	// waitingSince is when the job started waiting for workers, with the
	// deadline it has; zero while a ring runs.
	waitingSince time.Time
	joinDeadline <-chan time.Time

	hashes map[uint64]*hashRound

	// history is what the summary will report; losses holds the training
	// loss of each step reported (NaN until then), trainNs the longest
	// training time a worker reported.
	history history
	losses  []float64
	trainNs uint64

	finished map[*member]bool
	evals    sync.WaitGroup
	pending  int // evaluations running
	final    *wire.State
	// last is the newest ring that ended: who held which state then.
	last *ring
	// latest is the newest full state rank 0 uploaded (checkpoints), and
	// newestCheckpoint the file it went to.
	latest           *wire.State
	newestCheckpoint string
	// fixedPointBits is the deterministic mode's current resolution.
	fixedPointBits int
	traces         []*traced
	nTraces        int
	// shuttingDown is set once a shutdown asked the ring to pause.
	shuttingDown bool
	// reported is the number of steps rank 0 reported done (skipped ones
	// included).
	reported uint64
	// fruitless lists the causes of the rings in a row that failed before
	// completing a step.
	fruitless []string
}

// hashRound collects the replicas' weight hashes of one step.
type hashRound struct {
	ring   uint32
	hashes map[int]uint64
}

// supervise runs the job's event loop until it completes or fails.
func (c *coordinator) supervise(ctx context.Context) (*Summary, error) {
	s := &supervisor{
		fixedPointBits: int(c.job.FixedPointBits),
		progress:       newProgress(c.cfg.Progress, c.job, c.globalBatch(), c.heldOutName()),
		hashes:         map[uint64]*hashRound{},
		finished:       map[*member]bool{},
		history:        newHistory(c.epochs()),
		losses:         make([]float64, c.job.MaxSteps),
		committed:      c.startStep,
		reported:       c.startStep,
	}
	if c.resumed != nil {
		s.history = *c.resumed
		if b := c.resumed.FixedPointBits; b > 0 {
			s.fixedPointBits = b
		}
	}
	for i := range s.losses {
		s.losses[i] = math.NaN()
	}
	defer s.evals.Wait()
	if c.startStep == c.job.MaxSteps {
		return c.alreadyComplete(ctx, s)
	}
	c.states.set(1, c.initial)
	s.wait(c.cfg.JoinTimeout)
	shutdown := c.cfg.Shutdown
	for {
		var err error
		var ringDeadline, abortAt <-chan time.Time
		if s.ring != nil {
			ringDeadline, abortAt = s.ring.deadline, s.ring.abortAt
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("coordinator: interrupted: %w", context.Cause(ctx))
		case <-s.joinDeadline:
			err = c.joinTimedOut(s)
		case <-ringDeadline:
			c.ringTimedOut(s)
		case <-abortAt:
			s.ring.abortAt = nil
			c.abort(s.ring, s.ring.cause)
		case e := <-c.events:
			err = c.handle(s, e)
		case e := <-c.gossipEvents():
			err = c.handle(s, gossip{e})
		case <-shutdown:
			shutdown = nil
			err = c.beginShutdown(s)
		}
		if err == nil {
			err = c.advance(s)
		}
		if errors.Is(err, ErrShutdown) {
			return nil, c.shutdownNow(s)
		}
		if err != nil {
			return nil, c.fail(s, err)
		}
		// A ring that was asked to pause (a worker joined) after its members
		// had already finished the last step is done all the same.
		if s.ring != nil && !s.ring.failing && len(s.finished) == len(s.ring.members) &&
			s.final != nil && s.pending == 0 && (!c.job.Trace || s.nTraces == len(s.ring.members)) {
			return c.finish(s)
		}
	}
}

// completeGrace is how long a coordinator that found its job already
// complete stays to release the workers that come back to it: longer than
// a waiting worker's longest retry interval.
const completeGrace = 6 * time.Second

// alreadyComplete ends a job whose newest checkpoint holds its last step:
// the coordinator was restarted after the training ended (killed while it
// wrote its outputs, or after). It writes the outputs from that
// checkpoint, and releases the workers that reconnect meanwhile.
func (c *coordinator) alreadyComplete(ctx context.Context, s *supervisor) (*Summary, error) {
	c.log.Info("the job's newest checkpoint holds its last step: writing its outputs, releasing the workers that come back",
		"step", c.startStep, "for", completeGrace)
	release := &pb.Instruction{Kind: &pb.Instruction_Stop{Stop: &pb.Stop{}}}
	grace := time.After(completeGrace)
	for waiting := true; waiting; {
		select {
		case e := <-c.events:
			if j, ok := e.(joined); ok {
				j.m.send(release)
			}
		case <-grace:
			waiting = false
		case <-ctx.Done():
			waiting = false
		}
	}
	s.final = c.initial
	return c.finish(s)
}

// gossipEvents delivers the gossip node's events, or nothing without one.
func (c *coordinator) gossipEvents() <-chan membership.Event {
	if c.node == nil {
		return nil
	}
	return c.node.Events()
}

// wait starts waiting for workers, for at most timeout.
func (s *supervisor) wait(timeout time.Duration) {
	s.waitingSince = time.Now()
	s.joinDeadline = time.After(timeout)
}

// advance starts a ring when enough workers are waiting and none runs, and
// reconfigures a ring whose members have all reported how it ended.
func (c *coordinator) advance(s *supervisor) error {
	if r := s.ring; r != nil && (r.pausing || r.failing) && len(r.outcomes)+len(r.gone) == len(r.members) {
		return c.endRing(s)
	}
	if s.ring == nil {
		return c.maybeStart(s)
	}
	return nil
}

// handle applies one event.
func (c *coordinator) handle(s *supervisor, e event) error {
	switch e := e.(type) {
	case joined:
		c.log.Info("worker joined", "worker", e.m.id, "ring_addr", e.m.addr, "host", e.m.host, "pid", e.m.pid)
		if r := s.ring; r != nil && !r.pausing && !r.failing && len(r.members) < c.maxWorkers() {
			c.requestPause(s, "worker "+e.m.id+" joined")
		}
	case lost:
		return c.memberLost(s, e.m, e.err)
	case gossip:
		if e.e.Kind == membership.Failed || e.e.Kind == membership.Left {
			if m := c.registry.get(e.e.Name); m != nil {
				return c.memberLost(s, m, fmt.Errorf("gossip: the node %s", e.e.Kind))
			}
		}
	case exited:
		if m := c.registry.get(e.id); m != nil {
			return c.memberLost(s, m, fmt.Errorf("its process (pid %d) exited: %v", e.pid, e.err))
		}
		if s.genSeq == 0 && e.err != nil {
			// It failed before joining (its log says why): waiting for it
			// is pointless.
			return fmt.Errorf("coordinator: local worker %s (pid %d) exited before joining: %v; its log above says why", e.id, e.pid, e.err)
		}
	case reported:
		return c.report(s, e.r)
	case uploaded:
		return c.upload(s, e.st)
	case evaluated:
		s.pending--
		m := &s.history.Epochs[e.epoch]
		m.TestLoss, m.TestAccuracy, m.TrainLoss = Metric(e.loss), Metric(e.acc), s.epochTrainLoss(c, e.epoch)
		c.metrics.TestAccuracy.Set(e.acc)
		s.progress.epochEnd(*m)
		if s.latest != nil && s.latest.Header.Step >= m.Step && s.newestCheckpoint != "" {
			// The checkpoint went out before its epoch's evaluation came
			// back: its history gets the evaluation too.
			if err := saveHistory(s.newestCheckpoint, s.snapshot(c.job.StepsPerEpoch, s.latest.Header.Step)); err != nil {
				return err
			}
		}
	case traced:
		if s.traces == nil {
			s.traces = make([]*traced, len(s.ring.members))
		}
		if int(e.rank) >= len(s.traces) || s.traces[e.rank] != nil {
			return fmt.Errorf("coordinator: rank %d uploaded a trace twice or out of range", e.rank)
		}
		s.traces[e.rank] = &e
		s.nTraces++
	}
	return nil
}

// memberLost handles a worker gone: a waiting worker is forgotten, a ring
// member fails the ring.
func (c *coordinator) memberLost(s *supervisor, m *member, cause error) error {
	r := s.ring
	if r == nil || m.rank < 0 || r.members[m.rank] != m {
		if c.registry.get(m.id) == m {
			c.drop(m, cause)
			c.log.Warn("waiting worker left", "worker", m.id, "err", cause)
		}
		return nil
	}
	if _, done := r.gone[m]; done {
		return nil
	}
	if rep := r.outcomes[m]; rep != nil && rep.Leaving {
		return nil // it said it was leaving
	}
	if s.finished[m] {
		return nil
	}
	if s.final != nil {
		// The final state is in: every member computed the last step, and
		// nothing more is needed from this one. Losing it now (frozen, or
		// gone before its last report) does not fail the job; it stays
		// registered, so that the Stop reaches it if it is alive.
		c.log.Warn("lost a member after the last step", "worker", m.id, "err", cause)
		s.finished[m] = true
		return nil
	}
	c.drop(m, cause)
	// A member is gone or has reported how the ring ended, never both: a
	// report it made before it was lost does not make it a survivor (it
	// is no longer registered, and would never be told to stop).
	delete(r.outcomes, m)
	r.gone[m] = cause
	c.log.Warn("lost a ring member", "worker", m.id, "rank", m.rank, "err", cause)
	c.change(s, MembershipChange{Kind: "lost", Worker: m.id, Ring: r.id, Step: s.reported, Cause: cause.Error()})
	if r.failing && r.secondary && r.failedChange >= 0 {
		// The ring failed on a neighbour's broken stream, and now the
		// member behind it is lost: that is the root cause.
		ch := &s.history.MembershipChanges[r.failedChange]
		ch.Worker, ch.Cause = m.id, fmt.Sprintf("lost: %v", cause)
		r.cause, r.secondary = fmt.Sprintf("lost %s: %v", m.id, cause), false
	}
	if !r.failing {
		r.failing, r.failedAt, r.cause = true, time.Now(), fmt.Sprintf("lost %s: %v", m.id, cause)
		r.deadline = time.After(ringEndTimeout)
		abort := &pb.Instruction{Kind: &pb.Instruction_Abort{Abort: &pb.Abort{Generation: r.id, Reason: fmt.Sprintf("lost %v: %v", m, cause)}}}
		for _, o := range r.members {
			if _, g := r.gone[o]; !g && !o.send(abort) {
				r.gone[o] = errors.New("not reading its instructions")
			}
		}
	}
	return nil
}

// drop forgets member m, lost for cause, and ends its Join stream.
func (c *coordinator) drop(m *member, cause error) {
	c.registry.remove(m)
	m.drop(cause)
}

// requestPause asks the ring's members to pause at a common step boundary.
func (c *coordinator) requestPause(s *supervisor, why string) {
	r := s.ring
	r.pausing = true
	r.deadline = nil
	c.log.Info("pausing the ring", "ring", r.id, "why", why)
	p := &pb.Instruction{Kind: &pb.Instruction_Pause{Pause: &pb.Pause{Generation: r.id}}}
	for _, m := range r.members {
		m.send(p)
	}
}

// ringTimedOut treats the members that did not report how the ring ended
// as lost.
func (c *coordinator) ringTimedOut(s *supervisor) {
	r := s.ring
	for _, m := range r.members {
		if _, ok := r.outcomes[m]; !ok {
			if _, g := r.gone[m]; !g {
				r.gone[m] = fmt.Errorf("did not report within %v after its ring ended", ringEndTimeout)
				c.drop(m, r.gone[m])
			}
		}
	}
}

// maybeStart starts a ring when enough workers wait.
func (c *coordinator) maybeStart(s *supervisor) error {
	waiting := c.registry.all()
	need := c.cfg.MinWorkers
	if s.genSeq == 0 {
		need = c.cfg.world() // the first ring waits for everyone asked for
	}
	if len(waiting) < need {
		return nil
	}
	return c.startRing(s, waiting)
}

// joinTimedOut ends the wait for workers. A resumed job whose first ring
// did not gather all the workers asked for goes on with those that came,
// if they are at least MinWorkers: a worker lost before the coordinator
// restarted does not come back. Otherwise the job fails, naming who is
// missing.
func (c *coordinator) joinTimedOut(s *supervisor) error {
	if s.genSeq == 0 && c.startStep > 0 {
		if waiting := c.registry.all(); len(waiting) >= c.cfg.MinWorkers {
			c.log.Warn("resuming with the workers that came back", "have", len(waiting), "asked_for", c.cfg.world(), "waited", c.cfg.JoinTimeout)
			return c.startRing(s, waiting)
		}
	}
	return c.tooFewWorkers(s)
}

// tooFewWorkers is the error of a join timeout: who joined, who is
// missing.
func (c *coordinator) tooFewWorkers(s *supervisor) error {
	var ids []string
	for _, m := range c.registry.all() {
		ids = append(ids, m.id)
	}
	need := c.cfg.MinWorkers
	if s.genSeq == 0 {
		need = c.cfg.world()
	}
	msg := fmt.Sprintf("coordinator: waited %v for %d workers, %d joined", time.Since(s.waitingSince).Round(time.Second), need, len(ids))
	if len(ids) > 0 {
		msg += " (" + strings.Join(ids, ", ") + ")"
	}
	if c.local != nil {
		// Workers this coordinator started itself: name them, not a
		// flag the user has nothing to do with.
		var missing []string
		for _, id := range c.local.ids() {
			if !slices.Contains(ids, id) {
				missing = append(missing, id)
			}
		}
		msg += "; missing: " + strings.Join(missing, ", ")
	} else {
		msg += fmt.Sprintf("; missing %d (are they started, with -coordinator %s?)", need-len(ids), c.addr)
	}
	var lostWorkers []string
	for _, ch := range s.history.MembershipChanges {
		if ch.Kind == "lost" {
			lostWorkers = append(lostWorkers, fmt.Sprintf("%s at step %d (%s)", ch.Worker, ch.Step, ch.Cause))
		}
	}
	if len(lostWorkers) > 0 {
		msg += "; lost: " + strings.Join(lostWorkers, ", ")
	}
	return errors.New(msg)
}

// startRing forms a ring of members (at most MaxWorkers of them) starting
// at the committed step. Members that hold that state keep it (rolling
// their last step back if need be); the others fetch it, from the
// coordinator's store or from a member that uploads it.
func (c *coordinator) startRing(s *supervisor, candidates []*member) error {
	max := c.maxWorkers()
	var members []*member
	for _, m := range candidates {
		if len(members) < max {
			members = append(members, m)
		}
	}
	unit := 1
	if c.job.Deterministic {
		unit = int(c.job.MicroBatch)
	}
	lanes, err := planLanes(int(c.job.GlobalBatch), unit, len(members))
	if err != nil {
		return err
	}
	prev := s.last
	s.genSeq++
	r := &ring{id: s.genSeq, members: members, lanes: lanes, start: s.committed,
		outcomes: map[*member]*pb.WorkerReport{}, gone: map[*member]error{}, failedChange: -1}
	if prev != nil && prev.failing {
		r.recovering, r.recoveryFrom = true, prev.failedAt
	}
	// Who holds the state at the start step, from the last ring's reports;
	// the others fetch it, from the store or from a member that uploads it.
	holds := map[*member]uint64{}
	if prev != nil {
		for m, rep := range prev.outcomes {
			holds[m] = rep.Applied
		}
	}
	fetch := map[*member]bool{}
	for _, m := range members {
		if a, ok := holds[m]; !ok || (a != r.start && a != r.start+1) {
			fetch[m] = true
		}
	}
	var uploader *member
	if _, stored := c.states.peek(r.id); len(fetch) > 0 && !stored {
		for _, m := range members {
			if !fetch[m] {
				uploader = m
				break
			}
		}
		if uploader == nil {
			return fmt.Errorf("coordinator: no member holds the state after %d steps to start ring %d from", r.start, r.id)
		}
	}
	var addrs, ids []string
	for rank, m := range members {
		m.rank = rank
		addrs, ids = append(addrs, m.addr), append(ids, m.id)
	}
	for _, m := range c.registry.all() {
		if !slices.Contains(members, m) {
			m.rank = -1
		}
	}
	for rank, m := range members {
		a := &pb.Assignment{Job: c.job, Generation: r.id, Rank: int32(rank), RingAddrs: addrs, WorkerIds: ids,
			StartStep: r.start, FirstLane: uint32(lanes[rank].first), LaneCount: uint32(lanes[rank].count), GossipAddr: c.gossipAddr()}
		a.FetchState = fetch[m]
		a.RestoreBackup = !a.FetchState && holds[m] == r.start+1
		a.UploadState = m == uploader
		if !m.send(&pb.Instruction{Kind: &pb.Instruction_Assignment{Assignment: a}}) {
			return fmt.Errorf("coordinator: %v does not read its instructions", m)
		}
		c.log.Info("assigned", "worker", m.id, "ring", r.id, "rank", rank, "start_step", r.start,
			"lanes", fmt.Sprintf("%d+%d", lanes[rank].first, lanes[rank].count), "fetch_state", a.FetchState, "rollback", a.RestoreBackup)
	}
	s.ring, s.joinDeadline = r, nil
	c.metrics.RingSize.Set(float64(len(members)))
	s.hashes = map[uint64]*hashRound{}
	s.traces, s.nTraces = nil, 0
	if prev == nil {
		s.progress.start(r.start)
	}
	return nil
}

// endRing reconfigures after a ring paused or failed: members that left
// are released, the committed step is the least any survivor applied, and
// a new ring forms with the survivors and the workers waiting to enter.
func (c *coordinator) endRing(s *supervisor) error {
	r := s.ring
	var survivors []*member
	committed := uint64(math.MaxUint64)
	for _, m := range r.members {
		rep := r.outcomes[m]
		if rep == nil {
			continue
		}
		committed = min(committed, rep.Applied)
		if rep.Leaving {
			c.registry.remove(m)
			m.send(&pb.Instruction{Kind: &pb.Instruction_Stop{Stop: &pb.Stop{}}})
			c.change(s, MembershipChange{Kind: "left", Worker: m.id, Ring: r.id, Step: rep.Applied})
			continue
		}
		survivors = append(survivors, m)
	}
	if committed == math.MaxUint64 {
		// Every member is gone: start over from the newest state the
		// coordinator holds.
		st := c.latestState(s)
		if st == nil {
			return fmt.Errorf("coordinator: every member of ring %d was lost and there is no checkpoint to resume from", r.id)
		}
		committed = st.Header.Step
		c.states.set(s.genSeq+1, st)
	}
	if r.nonFinite != nil {
		return r.nonFinite
	}
	if r.failing && committed < s.reported {
		s.history.Rollbacks++
		c.metrics.Rollbacks.Inc()
	}
	for _, m := range r.members {
		if committed > r.start {
			s.history.WorkerSteps[m.id] += committed - r.start
		}
	}
	if slow, cause := straggler(r); slow != nil {
		c.log.Warn("straggler", "ring", r.id, "worker", slow.id, "cause", cause)
		c.change(s, MembershipChange{Kind: "straggler", Worker: slow.id, Ring: r.id, Step: committed, Cause: cause})
		r.cause = "straggler " + slow.id + ": " + cause
	}
	c.log.Info("ring ended", "ring", r.id, "failed", r.failing, "committed", committed, "survivors", len(survivors))
	s.committed, s.last = committed, r
	if err := s.countFruitless(r, c.cfg.RingFailures); err != nil {
		return err
	}
	if s.shuttingDown {
		return ErrShutdown
	}
	// Reports of steps past the committed one are void: they are redone.
	for i := committed; i < uint64(len(s.losses)); i++ {
		s.losses[i] = math.NaN()
	}
	s.reported = min(s.reported, committed)
	candidates := survivors
	for _, m := range c.registry.all() {
		if !slices.Contains(candidates, m) && !m.ended.Load() {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) < c.cfg.MinWorkers {
		c.log.Warn("too few workers; waiting for joins", "have", len(candidates), "min", c.cfg.MinWorkers, "timeout", c.cfg.JoinTimeout)
		s.ring = nil
		s.wait(c.cfg.JoinTimeout)
		return nil
	}
	for _, m := range candidates {
		if !slices.Contains(r.members, m) {
			c.change(s, MembershipChange{Kind: "joined", Worker: m.id, Ring: r.id + 1, Step: committed})
		}
	}
	return c.startRing(s, candidates)
}

// ErrShutdown is returned by Run when the coordinator was shut down
// (Config.Shutdown) before the job ended; the workers wait for it to come
// back, and a coordinator started on the same checkpoint folder resumes.
var ErrShutdown = errors.New("coordinator: shut down before the job ended")

// beginShutdown pauses the running ring with a checkpoint, when there is a
// ring to pause and a folder to checkpoint to; otherwise the coordinator
// stops at once.
func (c *coordinator) beginShutdown(s *supervisor) error {
	c.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	r := s.ring
	if r == nil || c.cfg.CheckpointDir == "" || r.failing {
		return ErrShutdown
	}
	s.shuttingDown = true
	c.log.Info("shutting down: pausing the ring for a checkpoint", "ring", r.id)
	r.pausing = true
	r.deadline = time.After(ringEndTimeout)
	p := &pb.Instruction{Kind: &pb.Instruction_Pause{Pause: &pb.Pause{Generation: r.id, Checkpoint: true}}}
	for _, m := range r.members {
		m.send(p)
	}
	return nil
}

// shutdownNow ends the coordinator without releasing the workers.
func (c *coordinator) shutdownNow(s *supervisor) error {
	s.progress.abort()
	c.joinMu.Lock()
	c.ending = true
	c.joinMu.Unlock()
	close(c.done)
	step := s.committed
	if s.latest != nil {
		step = max(step, s.latest.Header.Step)
	}
	if n := len(s.history.Checkpoints); n > 0 {
		c.log.Info("shut down", "step", step, "checkpoint", s.history.Checkpoints[n-1])
		return fmt.Errorf("%w: at step %d, checkpoint %s", ErrShutdown, step, s.history.Checkpoints[n-1])
	}
	c.log.Info("shut down", "step", step)
	return fmt.Errorf("%w: at step %d, no checkpoint", ErrShutdown, step)
}

// countFruitless keeps count of the rings in a row that failed before
// completing a step, and gives up once budget of them did: the same fault
// (an unreachable peer, a misconfigured address) would fail the next one
// too.
func (s *supervisor) countFruitless(r *ring, budget int) error {
	if !r.failing || r.stepped {
		s.fruitless = nil
		return nil
	}
	s.fruitless = append(s.fruitless, fmt.Sprintf("ring %d: %s", r.id, r.cause))
	if len(s.fruitless) < budget {
		return nil
	}
	return fmt.Errorf("coordinator: %d rings in a row failed before completing a step:\n  %s",
		len(s.fruitless), strings.Join(s.fruitless, "\n  "))
}

// straggler names the member the others waited for when ring r failed on
// an all-reduce deadline. A rank waits only for its left-hand neighbour and
// forwards what it receives, so a stalled ring is a chain of waits: each
// member waits for one that is itself stuck waiting, back to the first
// member starved, whose neighbour is not (it is frozen, slow, or ahead with
// its frames lost on the link between them). That neighbour, or the link to
// it, is the straggler. The witnesses are the failure reports of members
// that were waiting for a frame, whatever ended their collective, that came
// within twice timeoutGrace of the first: the abort goes out after one
// grace, and the members it reaches report at once; a member that was not
// running (frozen, or starved of CPU) reports late and is no witness.
// Among them the member stuck at the earliest step wins, then one whose
// neighbour is not a witness stuck at the same step, then the one that had
// received the fewest frames (the chain's frame counts grow away from its
// start), then the first to report.
func straggler(r *ring) (*member, string) {
	deadline := false
	for _, f := range r.failures {
		deadline = deadline || f.rep.TimedOut
	}
	if !deadline {
		return nil, ""
	}
	var witnesses []*pb.WorkerReport
	for _, f := range r.failures {
		rep := f.rep
		if rep.WaitingNs > 0 && rep.WaitedFor >= 0 && int(rep.WaitedFor) < len(r.members) && f.at.Sub(r.failures[0].at) <= 2*timeoutGrace {
			witnesses = append(witnesses, rep)
		}
	}
	// stuck reports whether the member of rank is a witness at step.
	stuck := func(rank int32, step uint64) bool {
		for _, w := range witnesses {
			if w.Rank == rank && w.Applied == step {
				return true
			}
		}
		return false
	}
	// beats says whether witness a is starved before witness b.
	beats := func(a, b *pb.WorkerReport) bool {
		if a.Applied != b.Applied {
			return a.Applied < b.Applied
		}
		if aFirst, bFirst := !stuck(a.WaitedFor, a.Applied), !stuck(b.WaitedFor, b.Applied); aFirst != bFirst {
			return aFirst
		}
		return a.FramesReceived < b.FramesReceived
	}
	var starved *pb.WorkerReport
	for _, rep := range witnesses {
		if starved == nil || beats(rep, starved) {
			starved = rep
		}
	}
	if starved == nil {
		return nil, ""
	}
	slow := r.members[starved.WaitedFor]
	return slow, fmt.Sprintf("%s (rank %d, %s) had waited %v for %s (rank %d, %s) after receiving %d frames of the collective when the ring failed on an all-reduce deadline",
		starved.WorkerId, starved.Rank, r.members[starved.Rank].addr, time.Duration(starved.WaitingNs).Round(time.Millisecond),
		slow.id, starved.WaitedFor, slow.addr, starved.FramesReceived)
}

// heldOutName names the set the job evaluates on.
func (c *coordinator) heldOutName() string {
	if c.cfg.Folds > 1 {
		return "validation"
	}
	return "test"
}
