package control

import (
	"fmt"
	"slices"
	"time"
)

// Config is what the machine knows of the job. Durations are handed back
// in SetTimer actions; the machine never waits itself.
type Config struct {
	// World is the number of workers asked for: the first ring waits for
	// them all. MinWorkers is the fewest a later ring runs with,
	// MaxWorkers the most any ring takes.
	World, MinWorkers, MaxWorkers int
	// GlobalBatch lanes are dealt to a ring's members in units of Unit.
	GlobalBatch, Unit int
	// RingFailures is how many rings in a row may fail before completing a
	// step before the job gives up.
	RingFailures int
	// MaxSteps is the job's length; StartStep where this coordinator
	// starts it (a checkpoint's step when it resumed).
	MaxSteps, StartStep uint64
	// Checkpointing: a shutdown pauses the ring for a checkpoint.
	Checkpointing bool
	// Trace: the job ends once every member uploaded its timeline.
	Trace bool
	// JoinTimeout bounds a wait for workers; RingEndTimeout the wait for
	// an ending ring's reports; TimeoutGrace the wait for the root cause
	// of a ring that failed on a deadline; CompleteGrace how long a job
	// found complete releases the workers that come back.
	JoinTimeout, RingEndTimeout, TimeoutGrace, CompleteGrace time.Duration
	// Lost lists the workers earlier coordinators of the job lost, as
	// TooFewWorkers.Lost does.
	Lost []string
}

// entry is a member as the machine tracks it.
type entry struct {
	Member
	// rank in the current ring, −1 outside it.
	rank int
	// registered until it is dropped or released; ended once its stream
	// ended.
	registered, ended bool
}

func (e *entry) String() string { return describe(e.Member, e.rank) }

// failure is a member's report of a failed ring and when it came.
type failure struct {
	rep Report
	at  time.Duration
}

// ring is a generation of the job: its members by rank, their lanes, the
// step it started at, and how it is ending.
type ring struct {
	id      uint32
	members []*entry
	lanes   []Lanes
	start   uint64
	// Ending: pausing (a worker joins or leaves) or failing (a member was
	// lost, or reported a failure); outcomes holds the members' reports of
	// how it ended, gone the causes of the members lost meanwhile. A
	// member is in one or the other, never both.
	pausing, failing bool
	failedAt         time.Duration
	outcomes         map[*entry]Report
	gone             map[*entry]error
	// recovering marks a ring that replaced a failed one, until its first
	// step is reported.
	recovering   bool
	recoveryFrom time.Duration
	// cause is why the ring failed, as first known; stepped whether it
	// completed a step; nonFinite the step whose gradient was not finite
	// under the stop policy.
	cause     string
	stepped   bool
	nonFinite *NonFiniteStep
	// failedChange says a ring-failed change was recorded, at
	// failedStep; secondary that its cause followed another failure.
	failedChange bool
	failedStep   uint64
	secondary    bool
	failures     []failure
}

// Machine is the ring lifecycle of one job. It is not safe for concurrent
// use: one loop owns it.
type Machine struct {
	cfg Config
	now time.Duration
	out []Action

	// byKey holds every member ever seen; byID the registered ones (not
	// dropped or released), the newest join of each id.
	byKey map[uint64]*entry
	byID  map[string]*entry

	ring, last *ring
	gen        uint32
	// committed is the step every replica holds, where the next ring
	// starts; reported the steps rank 0 reported done; held the step of
	// the newest full state the coordinator holds.
	committed, reported, held uint64
	waitingSince              time.Duration
	// storedFor is the ring whose start state the coordinator stores
	// besides the first's: one formed when no member held that state.
	storedFor uint32
	armed     [numTimers]bool

	// finished holds the members of the current ring done with the job's
	// last step (or lost after the final state came in), credited those
	// of them whose steps MemberFinished counted; final says that state
	// came in.
	finished, credited map[*entry]bool
	final              bool
	evaluating         int
	// traces holds the ranks of the current ring that uploaded their
	// timeline; untraced those lost after the final state came in
	// without one, whose timeline the job no longer waits for.
	traces, untraced map[int]bool
	hashes           map[uint64]map[int]uint64
	// shuttingDown is set once a shutdown asked the ring to pause.
	shuttingDown bool
	// fruitless lists the causes of the rings in a row that failed before
	// completing a step; lost the workers lost ("w at step N (cause)").
	fruitless []string
	lost      []string
	// complete: the job was complete when this coordinator started.
	complete bool
	done     bool
}

// New returns the machine of a job; Start begins it.
func New(cfg Config) *Machine {
	return &Machine{cfg: cfg, byKey: map[uint64]*entry{}, byID: map[string]*entry{}, finished: map[*entry]bool{}, credited: map[*entry]bool{},
		hashes: map[uint64]map[int]uint64{}, committed: cfg.StartStep, reported: cfg.StartStep, held: cfg.StartStep,
		lost: slices.Clone(cfg.Lost)}
}

// Start begins the job at now: it waits for workers, or, when the job is
// complete already, releases those that come back for a while.
func (m *Machine) Start(now time.Duration) []Action {
	m.now = now
	if m.cfg.StartStep >= m.cfg.MaxSteps {
		m.complete = true
		m.setTimer(GraceTimer, m.cfg.CompleteGrace)
		return m.flush()
	}
	m.emit(StoreState{Ring: 1, Step: m.held})
	m.wait()
	return m.flush()
}

// Handle applies event e, which happened at now (since the job started),
// and returns the actions to carry out. After a Finish it returns nothing.
func (m *Machine) Handle(now time.Duration, e Event) []Action {
	if m.done {
		return nil
	}
	m.now = max(m.now, now)
	if m.complete {
		m.handleComplete(e)
		return m.flush()
	}
	m.handle(e)
	if !m.done {
		m.advance()
	}
	if r := m.ring; !m.done && r != nil && m.final && m.evaluating == 0 && m.allDone(r) {
		m.finish(Completed, nil)
	}
	return m.flush()
}

// allDone reports whether every member of ring r, whose final state is in,
// is done with the job: it reported the last step (and uploaded its
// timeline), or nothing more can come from it (lost, or it reported how
// its ring ended). A ring that failed or was asked to pause meanwhile
// included: the final state is the job's, whatever the ring does next.
func (m *Machine) allDone(r *ring) bool {
	for rank, e := range r.members {
		_, gone := r.gone[e]
		_, ended := r.outcomes[e]
		switch {
		case gone || ended:
		case !m.finished[e]:
			return false
		case m.cfg.Trace && !m.traces[rank] && !m.untraced[rank]:
			return false
		}
	}
	return true
}

// Reported is the number of steps rank 0 reported done, and not undone.
func (m *Machine) Reported() uint64 { return m.reported }

// Committed is the number of steps every replica holds.
func (m *Machine) Committed() uint64 { return m.committed }

// Rings is the number of rings this machine formed.
func (m *Machine) Rings() uint32 { return m.gen }

// Workers is the size of the current ring, or of the last one.
func (m *Machine) Workers() int {
	if m.ring != nil {
		return len(m.ring.members)
	}
	if m.last != nil {
		return len(m.last.members)
	}
	return 0
}

func (m *Machine) emit(a Action) { m.out = append(m.out, a) }

func (m *Machine) flush() []Action {
	out := m.out
	m.out = nil
	return out
}

func (m *Machine) setTimer(t Timer, d time.Duration) {
	m.armed[t] = true
	m.emit(SetTimer{Timer: t, After: d})
}

func (m *Machine) stopTimer(t Timer) {
	if m.armed[t] {
		m.armed[t] = false
		m.emit(StopTimer{Timer: t})
	}
}

// finish ends the job.
func (m *Machine) finish(o Outcome, err error) {
	for t := range numTimers {
		m.stopTimer(t)
	}
	m.emit(Finish{Outcome: o, Err: err, Step: max(m.committed, m.held)})
	m.done = true
}

// fail ends the job with err.
func (m *Machine) fail(format string, args ...any) { m.finish(Failed, fmt.Errorf(format, args...)) }

// wait starts waiting for workers, for at most JoinTimeout.
func (m *Machine) wait() {
	m.waitingSince = m.now
	m.setTimer(JoinTimer, m.cfg.JoinTimeout)
}

// registered returns the registered members in the order of their ids.
func (m *Machine) registered() []*entry {
	var out []*entry
	for _, e := range m.byID {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return CompareIDs(a.ID, b.ID) })
	return out
}

// forget unregisters e.
func (m *Machine) forget(e *entry) {
	e.registered = false
	if m.byID[e.ID] == e {
		delete(m.byID, e.ID)
	}
}

// handleComplete handles the events of a job found complete: the workers
// that come back are released until the grace ends.
func (m *Machine) handleComplete(e Event) {
	switch e := e.(type) {
	case Joined:
		m.emit(Release{Member: e.Member})
	case Fired:
		if e.Timer == GraceTimer && m.armed[GraceTimer] {
			m.armed[GraceTimer] = false
			m.finish(Completed, nil)
		}
	case Interrupted:
		m.finish(Completed, nil)
	}
}

// handle applies one event.
func (m *Machine) handle(e Event) {
	switch e := e.(type) {
	case Joined:
		m.joined(e.Member)
	case Lost:
		if x := m.byKey[e.Key]; x != nil {
			m.memberLost(x, e.Cause)
		}
	case StreamEnded:
		if x := m.byKey[e.Key]; x != nil {
			x.ended = true
		}
	case ExitedUnjoined:
		if m.gen == 0 {
			m.finish(Failed, e.Err)
		}
	case Reported:
		m.report(e.Report)
	case Uploaded:
		m.upload(e)
	case Evaluated:
		m.evaluating = max(m.evaluating-1, 0)
	case Traced:
		m.traced(e)
	case Fired:
		if !m.armed[e.Timer] {
			return // disarmed since
		}
		m.armed[e.Timer] = false
		m.fired(e.Timer)
	case Shutdown:
		m.shutdown()
	case Interrupted:
		m.fail("interrupted: %w", e.Cause)
	}
}

// joined registers a worker; a ring with room for it pauses so that it
// can enter at a step boundary.
func (m *Machine) joined(mb Member) {
	if old := m.byKey[mb.Key]; old != nil {
		return // the same join twice
	}
	e := &entry{Member: mb, rank: -1, registered: true}
	m.byKey[mb.Key] = e
	if old := m.byID[mb.ID]; old != nil {
		old.registered = false // replaced: the caller refuses a live duplicate
	}
	m.byID[mb.ID] = e
	if r := m.ring; r != nil && !r.pausing && !r.failing && len(r.members) < m.cfg.MaxWorkers {
		m.requestPause("worker " + mb.ID + " joined")
	}
}

// requestPause asks the ring's members to pause at a common step boundary.
func (m *Machine) requestPause(why string) {
	r := m.ring
	r.pausing = true
	m.stopTimer(RingEndTimer)
	m.emit(Pause{Ring: r.id, To: members(r.members), Why: why})
}

func members(es []*entry) []Member {
	out := make([]Member, len(es))
	for i, e := range es {
		out[i] = e.Member
	}
	return out
}

// inRing reports whether e is a member of the current ring.
func (m *Machine) inRing(e *entry) bool {
	r := m.ring
	return r != nil && e.rank >= 0 && e.rank < len(r.members) && r.members[e.rank] == e
}

// memberLost handles a worker gone: a waiting worker is forgotten, a ring
// member fails the ring.
func (m *Machine) memberLost(e *entry, cause error) {
	r := m.ring
	if !m.inRing(e) {
		if e.registered {
			m.forget(e)
			m.emit(Drop{Member: e.Member, Rank: -1, Cause: cause, Reason: WaitingLeft})
		}
		return
	}
	if _, done := r.gone[e]; done {
		return
	}
	if rep, ok := r.outcomes[e]; ok && rep.Leaving {
		return // it said it was leaving
	}
	if m.finished[e] {
		return
	}
	if m.final {
		// The final state is in: every member computed the last step,
		// and nothing more is needed from this one. Losing it now does
		// not fail the job; it stays registered, so that the Stop reaches
		// it if it is alive.
		m.emit(LateLoss{Member: e.Member, Cause: cause})
		m.doneLate(e)
		return
	}
	m.forget(e)
	m.emit(Drop{Member: e.Member, Rank: e.rank, Cause: cause, Reason: MemberLost})
	// A member is gone or has reported how the ring ended, never both: a
	// report it made before it was lost does not make it a survivor.
	delete(r.outcomes, e)
	r.gone[e] = cause
	m.change(Change{Kind: "lost", Worker: e.ID, Ring: r.id, Step: m.reported, Cause: cause.Error()})
	if r.failing && r.secondary && r.failedChange {
		// The ring failed on a neighbour's broken stream, and now the
		// member behind it is lost: that is the root cause.
		m.emit(Change{Kind: "ring-failed", Worker: e.ID, Ring: r.id, Step: r.failedStep, Cause: fmt.Sprintf("lost: %v", cause), Amend: true})
		r.cause, r.secondary = fmt.Sprintf("lost %s: %v", e.ID, cause), false
	}
	if !r.failing {
		r.failing, r.failedAt, r.cause = true, m.now, fmt.Sprintf("lost %s: %v", e.ID, cause)
		m.emit(RingFailed{Ring: r.id, Worker: e.ID, Cause: r.cause})
		m.setTimer(RingEndTimer, m.cfg.RingEndTimeout)
		var to []Member
		for _, o := range r.members {
			if _, g := r.gone[o]; !g {
				to = append(to, o.Member)
			}
		}
		m.emit(Abort{Ring: r.id, To: to, Reason: fmt.Sprintf("lost %v: %v", e, cause)})
	}
}

// doneLate counts member e of the current ring done with the job, whose
// final state is in, though it did not report the last step: the job
// waits neither for that report nor for its timeline.
func (m *Machine) doneLate(e *entry) {
	m.finished[e] = true
	if m.untraced == nil {
		m.untraced = map[int]bool{}
	}
	m.untraced[e.rank] = true
}

// change records a membership change, and the lost ones for TooFewWorkers.
func (m *Machine) change(c Change) {
	if c.Kind == "lost" {
		m.lost = append(m.lost, fmt.Sprintf("%s at step %d (%s)", c.Worker, c.Step, c.Cause))
	}
	m.emit(c)
}

// abort tells every member of ring r to give it up.
func (m *Machine) abort(r *ring, reason string) {
	m.emit(Abort{Ring: r.id, To: members(r.members), Reason: reason})
}

// fired handles a timer that expired.
func (m *Machine) fired(t Timer) {
	switch t {
	case JoinTimer:
		m.joinTimedOut()
	case RingEndTimer:
		if r := m.ring; r != nil {
			// The members that did not report how the ring ended are lost.
			for _, e := range r.members {
				if _, ok := r.outcomes[e]; ok || (m.final && m.finished[e]) {
					continue // it reported, or finished a job that is over
				}
				if _, g := r.gone[e]; !g {
					r.gone[e] = fmt.Errorf("did not report within %v after its ring ended", m.cfg.RingEndTimeout)
					m.forget(e)
					m.emit(Drop{Member: e.Member, Rank: e.rank, Cause: r.gone[e], Reason: Silent})
					// Lost like any other: the summary and a later
					// TooFewWorkers name it.
					m.change(Change{Kind: "lost", Worker: e.ID, Ring: r.id, Step: m.reported, Cause: r.gone[e].Error()})
				}
			}
		}
	case AbortTimer:
		if r := m.ring; r != nil {
			m.abort(r, r.cause)
		}
	}
}

// shutdown pauses the running ring with a checkpoint, when there is a ring
// to pause and checkpoints are written; otherwise the job stops at once.
func (m *Machine) shutdown() {
	r := m.ring
	if m.shuttingDown {
		return
	}
	if r == nil || !m.cfg.Checkpointing || r.failing {
		m.finish(ShutDown, nil)
		return
	}
	m.shuttingDown = true
	r.pausing = true
	m.setTimer(RingEndTimer, m.cfg.RingEndTimeout)
	m.emit(Pause{Ring: r.id, To: members(r.members), Checkpoint: true, Why: "shutting down"})
}

// upload handles rank 0's upload of its full state.
func (m *Machine) upload(u Uploaded) {
	if m.ring == nil || u.Ring != m.ring.id {
		return
	}
	if u.Checkpoint || u.Final {
		m.held = u.Step
		m.emit(Checkpoint{Step: u.Step, Final: u.Final})
	}
	if u.Final {
		m.final = true
	}
	if u.EpochEnd && !u.Final {
		m.evaluating++
		m.emit(Evaluate{Epoch: u.Epoch, Step: u.Step})
	}
}

// traced counts the current ring's timelines, one per rank.
func (m *Machine) traced(t Traced) {
	r := m.ring
	if r == nil || t.Ring != r.id || t.Rank < 0 || t.Rank >= len(r.members) || m.traces[t.Rank] {
		return
	}
	if m.traces == nil {
		m.traces = map[int]bool{}
	}
	m.traces[t.Rank] = true
	m.emit(TraceIn{Rank: t.Rank})
}
