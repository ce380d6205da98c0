package control

import "time"

// Action is something the caller must do, or record, in the order Handle
// returns them.
type Action interface{ action() }

// Timer names one of the machine's timers.
type Timer int

// The timers.
const (
	// JoinTimer bounds the wait for workers to form a ring.
	JoinTimer Timer = iota
	// RingEndTimer bounds the wait for an ending ring's members to
	// report; those that did not are then lost.
	RingEndTimer
	// AbortTimer is the grace before a ring that failed on a deadline is
	// aborted: the members stuck behind the root cause report meanwhile.
	AbortTimer
	// GraceTimer is how long a job found complete stays to release the
	// workers that come back.
	GraceTimer
	numTimers
)

func (t Timer) String() string {
	return [...]string{"join", "ring-end", "abort", "grace", "?"}[min(t, numTimers)]
}

// SetTimer: (re)arm Timer to fire After from now; a Fired event follows.
type SetTimer struct {
	Timer Timer
	After time.Duration
}

// StopTimer: disarm Timer.
type StopTimer struct{ Timer Timer }

// Place is a member's place in a new ring.
type Place struct {
	Member Member
	Rank   int
	Lanes  Lanes
	// FetchState: the member fetches the start state (from the
	// coordinator's store, or from the uploader). RestoreBackup: it holds
	// one step more and rolls back. UploadState: it uploads the start
	// state for those that fetch it.
	FetchState, RestoreBackup, UploadState bool
}

// StartRing: assign every member its place in ring Ring, which starts at
// step Start. First is the coordinator's first ring.
type StartRing struct {
	Ring   uint32
	Start  uint64
	Places []Place
	First  bool
}

// StoreState: the newest full state the coordinator holds (its initial
// state or the newest checkpoint, after Step steps) is the state ring Ring
// starts from, for the members that fetch it.
type StoreState struct {
	Ring uint32
	Step uint64
}

// Pause: ask the members of Ring to stop at a common step boundary, with
// a checkpoint if Checkpoint; Why says what for.
type Pause struct {
	Ring       uint32
	To         []Member
	Checkpoint bool
	Why        string
}

// Abort: tell the members of Ring to give it up.
type Abort struct {
	Ring   uint32
	To     []Member
	Reason string
}

// Release: the member leaves the job: forget it and tell it to stop.
type Release struct{ Member Member }

// DropReason says why a member is dropped.
type DropReason int

// The reasons to drop a member.
const (
	// WaitingLeft: a worker waiting to enter a ring is gone.
	WaitingLeft DropReason = iota
	// MemberLost: a ring member is gone; its ring fails.
	MemberLost
	// Silent: a member did not report how its ring ended in time.
	Silent
)

// Drop: forget the member and end its stream with Cause: if it is alive
// after all, it joins again as a new member. Rank is its rank in the ring,
// −1 outside one.
type Drop struct {
	Member Member
	Rank   int
	Cause  error
	Reason DropReason
}

// Change records a membership change: Kind lost, joined, left, ring-failed
// or straggler. An Amend rewrites the ring-failed change of Ring instead
// (its root cause came after a consequence).
type Change struct {
	Kind   string
	Worker string
	Ring   uint32
	Step   uint64
	Cause  string
	Amend  bool
}

// MemberFailed: a member reported that Ring failed under it, while it
// waited for WaitingFor ("" when it was not waiting).
type MemberFailed struct {
	Ring       uint32
	Worker     string
	WaitingFor string
}

// RingFailed: Ring failed; Worker is the member that reported it or was
// lost (Reported tells which), Cause why.
type RingFailed struct {
	Ring       uint32
	Worker     string
	WaitingFor string
	Cause      string
	Reported   bool
}

// LateLoss: a member was lost after the job's final state came in; the job
// does not need it any more.
type LateLoss struct {
	Member Member
	Cause  error
}

// IgnoredReport: a report of another ring, or of a member already
// declared lost (Lost), was ignored.
type IgnoredReport struct {
	Worker string
	Ring   uint32
	Lost   bool
}

// RejectedReport: a report contradicts the job's state; its sender, if a
// member, is lost.
type RejectedReport struct {
	Worker string
	Err    error
}

// StepReport: a member's report of steps First to Last of Ring was
// accepted. On rank 0's report, Recovered says it is the first step of a
// ring that replaced a failed one, Recovery how long after the failure.
type StepReport struct {
	Ring        uint32
	Rank        int
	First, Last uint64
	Recovered   bool
	Recovery    time.Duration
}

// TraceIn: the timeline the member of Rank of the current ring uploaded is
// the one the job waits for: keep it. A timeline of another ring (uploaded
// as that ring ended) or a second one is not.
type TraceIn struct{ Rank int }

// ReplicasAgree: every member of the ring reported the same weights hash
// after Step.
type ReplicasAgree struct{ Step uint64 }

// MemberFinished: Worker computed the job's last step, Steps of them in
// its ring.
type MemberFinished struct {
	Worker string
	Steps  uint64
}

// Credit is the steps a worker computed in a ring that ended.
type Credit struct {
	Worker string
	Steps  uint64
}

// RingEnded: Ring paused or failed; Committed steps are held by every
// replica and the next ring starts there. Rollback: steps reported done
// are undone. Credits are the steps its members computed.
type RingEnded struct {
	Ring      uint32
	Failed    bool
	Committed uint64
	Survivors int
	Rollback  bool
	Credits   []Credit
	// Straggler names the member the others waited for when the ring
	// failed on a deadline, with why; "" when none is known.
	Straggler, StragglerCause string
}

// Rewind: the reports of steps from Step on are void (they are redone).
type Rewind struct{ Step uint64 }

// WaitForJoins: too few workers are left to form a ring (Have of Min);
// the job waits for joins, JoinTimer armed.
type WaitForJoins struct{ Have, Min int }

// Resuming: a resumed job's first ring goes on with the Have workers that
// came back, fewer than it asked for.
type Resuming struct{ Have int }

// Checkpoint: rank 0's upload after Step steps is the newest full state:
// keep it and write the checkpoint. Final: it is the job's last step.
type Checkpoint struct {
	Step  uint64
	Final bool
}

// Evaluate: evaluate the upload, the state at the end of Epoch (0-based,
// after Step steps); an Evaluated event follows.
type Evaluate struct {
	Epoch int
	Step  uint64
}

// Outcome is how a job ends.
type Outcome int

// The outcomes.
const (
	// Completed: the job's final state is in and every member is done.
	Completed Outcome = iota
	// Failed: the job cannot go on; Finish.Err says why.
	Failed
	// ShutDown: the coordinator stopped before the job ended; the workers
	// wait for the next one.
	ShutDown
)

func (o Outcome) String() string { return [...]string{"completed", "failed", "shut down"}[o] }

// Finish: the job is over. Step is where the training stands. The
// machine handles no event after it.
type Finish struct {
	Outcome Outcome
	Err     error
	Step    uint64
}

func (SetTimer) action()       {}
func (StopTimer) action()      {}
func (StartRing) action()      {}
func (StoreState) action()     {}
func (Pause) action()          {}
func (Abort) action()          {}
func (Release) action()        {}
func (Drop) action()           {}
func (Change) action()         {}
func (MemberFailed) action()   {}
func (RingFailed) action()     {}
func (LateLoss) action()       {}
func (IgnoredReport) action()  {}
func (RejectedReport) action() {}
func (StepReport) action()     {}
func (TraceIn) action()        {}
func (ReplicasAgree) action()  {}
func (MemberFinished) action() {}
func (RingEnded) action()      {}
func (Rewind) action()         {}
func (WaitForJoins) action()   {}
func (Resuming) action()       {}
func (Checkpoint) action()     {}
func (Evaluate) action()       {}
func (Finish) action()         {}
