package control

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// advance ends a ring whose members have all reported how it ended, or
// starts one when none runs and enough workers wait. Once the job's final
// state is in, no ring ends or starts: the job completes (Handle) when its
// members and evaluations are done.
func (m *Machine) advance() {
	if m.final {
		return
	}
	if r := m.ring; r != nil && (r.pausing || r.failing) && len(r.outcomes)+len(r.gone) == len(r.members) {
		m.endRing()
		return
	}
	if m.ring == nil {
		m.maybeStart()
	}
}

// need is the number of workers a ring needs: the first waits for every
// worker asked for.
func (m *Machine) need() int {
	if m.gen == 0 {
		return m.cfg.World
	}
	return m.cfg.MinWorkers
}

// maybeStart starts a ring when enough workers wait.
func (m *Machine) maybeStart() {
	if waiting := m.registered(); len(waiting) >= m.need() {
		m.startRing(waiting)
	}
}

// joinTimedOut ends the wait for workers. A resumed job whose first ring
// did not gather all the workers asked for goes on with those that came,
// if they are at least MinWorkers: a worker lost before the coordinator
// restarted does not come back. Otherwise the job fails, naming who is
// missing.
func (m *Machine) joinTimedOut() {
	waiting := m.registered()
	if m.gen == 0 && m.cfg.StartStep > 0 && len(waiting) >= m.cfg.MinWorkers {
		m.emit(Resuming{Have: len(waiting)})
		m.startRing(waiting)
		return
	}
	var ids []string
	for _, e := range waiting {
		ids = append(ids, e.ID)
	}
	m.finish(Failed, &TooFewWorkers{Waited: m.now - m.waitingSince, Need: m.need(), Joined: ids, Lost: slices.Clone(m.lost)})
}

// startRing forms a ring of candidates (at most MaxWorkers of them)
// starting at the committed step. Members that hold that state keep it
// (rolling their last step back if need be); the others fetch it, from the
// coordinator's store or from a member that uploads it.
func (m *Machine) startRing(candidates []*entry) {
	mem := candidates[:min(len(candidates), m.cfg.MaxWorkers)]
	lanes, err := PlanLanes(m.cfg.GlobalBatch, m.cfg.Unit, len(mem))
	if err != nil {
		m.finish(Failed, err)
		return
	}
	prev := m.last
	m.gen++
	r := &ring{id: m.gen, members: slices.Clone(mem), lanes: lanes, start: m.committed,
		outcomes: map[*entry]Report{}, gone: map[*entry]error{}}
	if prev != nil && prev.failing {
		r.recovering, r.recoveryFrom = true, prev.failedAt
	}
	// Who holds the state at the start step, from the last ring's reports.
	holds := map[*entry]uint64{}
	if prev != nil {
		for e, rep := range prev.outcomes {
			holds[e] = rep.Applied
		}
	}
	fetch, uploader := m.sources(r, holds)
	if stored := r.id == 1 || m.storedFor == r.id; len(fetch) > 0 && !stored && uploader == nil {
		// Those that held the start state were lost while the job waited
		// for workers: start from the newest state the coordinator holds.
		if m.held < m.reported {
			m.emit(Rewind{Step: m.held})
			m.reported = m.held
		}
		m.committed, r.start, m.storedFor = m.held, m.held, r.id
		m.emit(StoreState{Ring: r.id, Step: m.held})
		fetch, _ = m.sources(r, holds)
	}
	for _, e := range m.byKey {
		e.rank = -1
	}
	a := StartRing{Ring: r.id, Start: r.start, First: prev == nil}
	for rank, e := range r.members {
		e.rank = rank
		a.Places = append(a.Places, Place{Member: e.Member, Rank: rank, Lanes: lanes[rank], FetchState: fetch[e],
			RestoreBackup: !fetch[e] && holds[e] == r.start+1, UploadState: e == uploader})
	}
	m.ring = r
	m.stopTimer(JoinTimer)
	m.stopTimer(RingEndTimer)
	m.stopTimer(AbortTimer)
	m.hashes = map[uint64]map[int]uint64{}
	m.traces, m.untraced = nil, nil
	// Who finished counts in this ring: one that finished the last step
	// in a ring that then failed computes it again here.
	m.finished, m.credited = map[*entry]bool{}, map[*entry]bool{}
	m.emit(a)
}

// sources says which members of ring r fetch its start state, and which
// member uploads it when the coordinator's store lacks it (the store holds
// the first ring's state, and the state of a ring formed when no member
// held it; otherwise a member that holds it uploads it). holds is the step
// each member applied in the ring before; those that hold the start step,
// or one more, keep it. Zero steps says nothing: a member whose fetch of a
// start state was cut short reports zero too, so it fetches.
func (m *Machine) sources(r *ring, holds map[*entry]uint64) (fetch map[*entry]bool, uploader *entry) {
	fetch = map[*entry]bool{}
	for _, e := range r.members {
		if a, ok := holds[e]; !ok || a == 0 || (a != r.start && a != r.start+1) {
			fetch[e] = true
		}
	}
	if stored := r.id == 1 || m.storedFor == r.id; len(fetch) > 0 && !stored {
		for _, e := range r.members {
			if !fetch[e] {
				return fetch, e
			}
		}
	}
	return fetch, nil
}

// endRing reconfigures after a ring paused or failed: members that left
// are released, the committed step is the least any survivor applied, and
// a new ring forms with the survivors and the workers waiting to enter.
func (m *Machine) endRing() {
	r := m.ring
	m.stopTimer(RingEndTimer)
	m.stopTimer(AbortTimer)
	var survivors []*entry
	committed := uint64(math.MaxUint64)
	for _, e := range r.members {
		rep, ok := r.outcomes[e]
		if !ok {
			continue
		}
		if rep.Applied >= r.start {
			// A member that reports fewer steps than the ring started at
			// never got its start state (it was aborted while fetching
			// it): it holds nothing of the ring, and fetches it again.
			committed = min(committed, rep.Applied)
		}
		if rep.Leaving {
			m.forget(e)
			m.emit(Release{Member: e.Member})
			m.change(Change{Kind: "left", Worker: e.ID, Ring: r.id, Step: rep.Applied})
			continue
		}
		if e.ended {
			// It reported, then its stream ended: its Lost event follows,
			// and the next ring would fail for it at once.
			continue
		}
		survivors = append(survivors, e)
	}
	switch {
	case len(survivors) == 0:
		// Every member is gone or left: start over from the newest state
		// the coordinator holds.
		committed = m.held
		m.storedFor = m.gen + 1
		m.emit(StoreState{Ring: m.gen + 1, Step: m.held})
	case committed == math.MaxUint64:
		// No survivor holds a step of the ring: the next starts where it
		// did, from the coordinator's newest state if no member holds it.
		committed = r.start
	}
	if nf := r.nonFinite; nf != nil {
		if len(nf.Workers) == 0 {
			for _, e := range r.members {
				if _, gone := r.gone[e]; gone {
					nf.Lost = append(nf.Lost, e.ID)
				}
			}
		}
		m.finish(Failed, nf)
		return
	}
	if committed >= m.cfg.MaxSteps {
		// Every replica holds the last step but its state never came in
		// (rank 0 was lost before its upload): the last step is redone,
		// from the members' backups, so that a ring has a step to run.
		committed = m.cfg.MaxSteps - 1
	}
	end := RingEnded{Ring: r.id, Failed: r.failing, Committed: committed, Survivors: len(survivors),
		Rollback: r.failing && committed < m.reported}
	if committed > r.start {
		for _, e := range r.members {
			if m.credited[e] {
				continue // its MemberFinished counted them
			}
			end.Credits = append(end.Credits, Credit{Worker: e.ID, Steps: committed - r.start})
		}
	}
	if slow, cause := straggler(r, 2*m.cfg.TimeoutGrace); slow != nil {
		m.change(Change{Kind: "straggler", Worker: slow.ID, Ring: r.id, Step: committed, Cause: cause})
		r.cause = "straggler " + slow.ID + ": " + cause
		end.Straggler, end.StragglerCause = slow.ID, cause
	}
	m.emit(end)
	m.committed, m.last = committed, r
	if !r.failing || r.stepped {
		m.fruitless = nil
	} else {
		// The rings in a row that failed before completing a step: the
		// same fault (an unreachable peer, a misconfigured address) would
		// fail the next one too.
		m.fruitless = append(m.fruitless, fmt.Sprintf("ring %d: %s", r.id, r.cause))
		if len(m.fruitless) >= m.cfg.RingFailures {
			m.finish(Failed, fmt.Errorf("%d rings in a row failed before completing a step:\n  %s",
				len(m.fruitless), strings.Join(m.fruitless, "\n  ")))
			return
		}
	}
	if m.shuttingDown {
		m.finish(ShutDown, nil)
		return
	}
	// Reports of steps past the committed one are void: they are redone.
	m.emit(Rewind{Step: committed})
	m.reported = min(m.reported, committed)
	candidates := survivors
	for _, e := range m.registered() {
		if !slices.Contains(candidates, e) && !e.ended {
			candidates = append(candidates, e)
		}
	}
	if len(candidates) < m.cfg.MinWorkers {
		m.ring = nil
		for _, e := range m.byKey {
			e.rank = -1
		}
		m.emit(WaitForJoins{Have: len(candidates), Min: m.cfg.MinWorkers})
		m.wait()
		return
	}
	for _, e := range candidates {
		if !slices.Contains(r.members, e) {
			m.change(Change{Kind: "joined", Worker: e.ID, Ring: r.id + 1, Step: committed})
		}
	}
	m.startRing(candidates)
}

// report handles a member's report.
func (m *Machine) report(rep Report) {
	r := m.ring
	if r == nil || rep.Ring != r.id {
		m.emit(IgnoredReport{Worker: rep.Worker, Ring: rep.Ring})
		return
	}
	if rep.Rank < 0 || rep.Rank >= len(r.members) || r.members[rep.Rank].ID != rep.Worker {
		m.reject(rep, fmt.Errorf("rank %d of ring %d is not %q", rep.Rank, r.id, rep.Worker))
		return
	}
	e := r.members[rep.Rank]
	if _, gone := r.gone[e]; gone {
		// Declared lost before its report came: the ring goes on without
		// it, and its stream has been ended so that it joins again.
		m.emit(IgnoredReport{Worker: rep.Worker, Ring: rep.Ring, Lost: true})
		return
	}
	switch rep.Status {
	case ReportPaused, ReportFailed:
		m.ending(r, e, rep)
		return
	}
	steps := uint64(max(rep.Steps, 1))
	if steps > rep.Step+1 || rep.Step+1-steps < r.start {
		m.reject(rep, fmt.Errorf("step: %d (from %d), ring %d started at %d", rep.Step, int64(rep.Step)+1-int64(steps), r.id, r.start))
		return
	}
	if rep.Step >= m.cfg.MaxSteps {
		m.reject(rep, fmt.Errorf("step: %d, the job has %d steps", rep.Step, m.cfg.MaxSteps))
		return
	}
	if next := max(m.reported, r.start); rep.Rank == 0 && rep.Step+1-steps != next {
		// Rank 0 reports every step once, in order.
		m.reject(rep, fmt.Errorf("step: %d (from %d), the next step is %d", rep.Step, rep.Step+1-steps, next))
		return
	}
	sr := StepReport{Ring: r.id, Rank: rep.Rank, First: rep.Step + 1 - steps, Last: rep.Step}
	if rep.Rank == 0 {
		if r.recovering {
			sr.Recovered, sr.Recovery = true, m.now-r.recoveryFrom
			r.recovering = false
		}
		r.stepped, m.reported = true, rep.Step+1
	}
	m.emit(sr)
	if rep.HasHash && !m.checkHash(r, rep) {
		return
	}
	if rep.Finished {
		m.finished[e], m.credited[e] = true, true
		m.emit(MemberFinished{Worker: e.ID, Steps: rep.Step + 1 - r.start})
	}
}

// ending records a member's report of how its ring ended (it paused, or
// the ring failed under it).
func (m *Machine) ending(r *ring, e *entry, rep Report) {
	failed := rep.Status == ReportFailed
	if failed && m.final && !r.failing {
		// The final state is in: rank 0 completed the last all-reduce,
		// and nothing more is needed from this member. Its ring failing
		// under it now (its last all-gather cut short) fails nothing, as
		// its loss would not.
		m.emit(MemberFailed{Ring: r.id, Worker: e.ID, WaitingFor: waitedFor(r, rep)})
		m.doneLate(e)
		return
	}
	r.outcomes[e] = rep
	if failed {
		r.failures = append(r.failures, failure{rep, m.now})
		m.emit(MemberFailed{Ring: r.id, Worker: e.ID, WaitingFor: waitedFor(r, rep)})
	}
	if rep.Fatal {
		if r.nonFinite == nil {
			r.nonFinite = &NonFiniteStep{Step: rep.Step, Reason: rep.Error}
		}
		if rep.NonfiniteHere {
			r.nonFinite.Workers = append(r.nonFinite.Workers, e.ID)
		}
	}
	if failed && r.failing && r.secondary && !rep.Secondary && r.failedChange {
		// A root cause arrived after a consequence: record it instead.
		m.emit(Change{Kind: "ring-failed", Worker: e.ID, Ring: r.id, Step: rep.Applied, Cause: rep.Error, Amend: true})
		r.failedStep = rep.Applied
		r.cause, r.secondary = fmt.Sprintf("%s: %s", e.ID, rep.Error), false
		if !rep.TimedOut && m.armed[AbortTimer] {
			// Nothing more to wait for: abort now.
			m.stopTimer(AbortTimer)
			m.abort(r, rep.Error)
		}
	}
	if failed && !r.failing {
		m.emit(RingFailed{Ring: r.id, Worker: e.ID, WaitingFor: waitedFor(r, rep), Cause: rep.Error, Reported: true})
		m.change(Change{Kind: "ring-failed", Worker: e.ID, Ring: r.id, Step: rep.Applied, Cause: rep.Error})
		r.failedChange, r.failedStep, r.secondary = true, rep.Applied, rep.Secondary
		r.failing, r.failedAt, r.cause = true, m.now, fmt.Sprintf("%s: %s", e.ID, rep.Error)
		m.setTimer(RingEndTimer, m.cfg.RingEndTimeout)
		switch {
		case rep.Fatal:
			// A non-finite step: every member saw the same sum and stops
			// at the same step by itself. An abort could cut short a
			// member still receiving the step's last frames, which would
			// then not say whether its own batch was at fault: wait for
			// every member's report instead.
		case rep.TimedOut || rep.Secondary:
			// The root cause (a member starved past its deadline, or the
			// one a broken stream points at) may be a moment behind: give
			// the others the time to report it.
			m.setTimer(AbortTimer, m.cfg.TimeoutGrace)
		default:
			m.abort(r, rep.Error)
		}
	}
	if rep.Status == ReportPaused && !r.pausing {
		r.pausing = true // a worker asked to leave
	}
	if !m.armed[RingEndTimer] {
		m.setTimer(RingEndTimer, m.cfg.RingEndTimeout)
	}
}

// reject handles a report that contradicts the job's state: the report is
// dropped and, when it names a worker of the job, that worker is treated
// as lost (a replica that misreports cannot be trusted to hold the right
// weights); the job goes on without it.
func (m *Machine) reject(rep Report, err error) {
	m.emit(RejectedReport{Worker: rep.Worker, Err: err})
	if e := m.byID[rep.Worker]; e != nil {
		m.memberLost(e, fmt.Errorf("sent an invalid report: %w", err))
	}
}

// checkHash compares the replicas' weights once every member of the ring
// has reported the step; it reports false when the job failed.
func (m *Machine) checkHash(r *ring, rep Report) bool {
	h := m.hashes[rep.Step]
	if h == nil {
		h = map[int]uint64{}
		m.hashes[rep.Step] = h
	}
	if _, dup := h[rep.Rank]; dup {
		m.fail("%v reported the hash of step %d twice", r.members[rep.Rank], rep.Step)
		return false
	}
	h[rep.Rank] = rep.Hash
	if len(h) < len(r.members) {
		return true
	}
	delete(m.hashes, rep.Step)
	for rank := 1; rank < len(r.members); rank++ {
		if h[rank] != h[0] {
			m.fail("replicas diverged after step %d: %v has weights hash %016x, %v has %016x",
				rep.Step, r.members[0], h[0], r.members[rank], h[rank])
			return false
		}
	}
	m.emit(ReplicasAgree{Step: rep.Step})
	return true
}

// waitedFor names the member a failure report's sender was waiting for
// (its left-hand neighbour, when its collective was waiting for a frame),
// or "" when it was not waiting.
func waitedFor(r *ring, rep Report) string {
	if rep.Waiting == 0 || rep.WaitedFor < 0 || rep.WaitedFor >= len(r.members) {
		return ""
	}
	return r.members[rep.WaitedFor].ID
}
