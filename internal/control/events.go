package control

import (
	"fmt"
	"time"
)

// Member is a worker that joined, as the machine knows it. Key tells apart
// the successive joins of one worker id (a worker that restarts joins
// again under its id as a new member); the caller chooses it, unique.
type Member struct {
	Key  uint64
	ID   string
	Addr string
}

// describe names member m of rank (−1 outside a ring) in errors.
func describe(m Member, rank int) string {
	if rank >= 0 {
		return fmt.Sprintf("worker %s (rank %d, %s)", m.ID, rank, m.Addr)
	}
	return fmt.Sprintf("worker %s (%s)", m.ID, m.Addr)
}

// Event is something that happened, for Handle.
type Event interface{ event() }

// Joined: a worker joined the job; it waits to enter a ring.
type Joined struct{ Member Member }

// Lost: the member of Key is gone (its stream broke, gossip declared it
// failed, its process exited, an instruction could not reach it).
type Lost struct {
	Key   uint64
	Cause error
}

// StreamEnded: the member of Key no longer reads its instructions; its
// Lost event follows. A ring re-formed meanwhile leaves it out.
type StreamEnded struct{ Key uint64 }

// ExitedUnjoined: a worker the coordinator started itself exited before it
// joined; Err says how. Before the first ring that fails the job.
type ExitedUnjoined struct{ Err error }

// ReportStatus is what a worker's report is about.
type ReportStatus int

// The kinds of report.
const (
	// ReportStep: the member computed steps (rank 0 batches several).
	ReportStep ReportStatus = iota
	// ReportPaused: the member stopped at a step boundary, as asked or to
	// leave.
	ReportPaused
	// ReportFailed: the member's ring failed under it.
	ReportFailed
)

// Report is a worker's report, the fields the lifecycle needs.
type Report struct {
	Worker string
	Ring   uint32
	Rank   int
	Status ReportStatus
	// Step is the (last) step a ReportStep report covers, Steps how many it
	// covers (at least one); for a ReportFailed report with Fatal, the step whose
	// gradient was not finite.
	Step  uint64
	Steps int
	// Applied is how many steps the member's replica holds (ReportPaused
	// and ReportFailed reports).
	Applied uint64
	// Finished: the member computed the job's last step.
	Finished bool
	// Leaving: the member paused to leave the job.
	Leaving bool
	// Fatal: the step's gradient was not finite under the stop policy;
	// NonfiniteHere: on this member's own batch.
	Fatal, NonfiniteHere bool
	// TimedOut: the member's collective passed its deadline; Secondary:
	// it broke because a neighbour's did.
	TimedOut, Secondary bool
	// Waiting is how long the member's collective had been waiting for a
	// frame from rank WaitedFor (its left-hand neighbour) when it failed,
	// after Frames frames.
	Waiting   time.Duration
	WaitedFor int
	Frames    uint32
	Error     string
	// HasHash: Hash is the member's weights hash after Step.
	HasHash bool
	Hash    uint64
}

// Reported: a member sent a report.
type Reported struct{ Report Report }

// Uploaded: rank 0 of Ring uploaded its full state after Step: a
// checkpoint, an epoch's end (Epoch, 0-based), or the job's last step.
type Uploaded struct {
	Ring                        uint32
	Step                        uint64
	Epoch                       int
	Checkpoint, EpochEnd, Final bool
}

// Evaluated: an evaluation an Evaluate action started is over.
type Evaluated struct{}

// Traced: the member of Rank in Ring uploaded its timeline.
type Traced struct {
	Ring uint32
	Rank int
}

// Fired: the timer armed last by a SetTimer action expired.
type Fired struct{ Timer Timer }

// Shutdown: the coordinator was asked to stop, leaving the workers to the
// next coordinator of the job.
type Shutdown struct{}

// Interrupted: the coordinator's context ended.
type Interrupted struct{ Cause error }

func (Joined) event()         {}
func (Lost) event()           {}
func (StreamEnded) event()    {}
func (ExitedUnjoined) event() {}
func (Reported) event()       {}
func (Uploaded) event()       {}
func (Evaluated) event()      {}
func (Traced) event()         {}
func (Fired) event()          {}
func (Shutdown) event()       {}
func (Interrupted) event()    {}
