package control

import (
	"fmt"
	"time"
)

// straggler names the member the others waited for when ring r failed on
// an all-reduce deadline. A rank waits only for its left-hand neighbour and
// forwards what it receives, so a stalled ring is a chain of waits: each
// member waits for one that is itself stuck waiting, back to the first
// member starved, whose neighbour is not (it is frozen, slow, or ahead with
// its frames lost on the link between them). That neighbour, or the link to
// it, is the straggler. The witnesses are the failure reports of members
// that were waiting for a frame, whatever ended their collective, that came
// within window (twice the abort's grace) of the first: the abort goes out
// after one grace, and the members it reaches report at once; a member that
// was not running (frozen, or starved of CPU) reports late and is no
// witness. Among them the member stuck at the earliest step wins, then one
// whose neighbour is not a witness stuck at the same step, then the one
// that had received the fewest frames (the chain's frame counts grow away
// from its start), then the first to report.
func straggler(r *ring, window time.Duration) (*entry, string) {
	deadline := false
	for _, f := range r.failures {
		deadline = deadline || f.rep.TimedOut
	}
	if !deadline {
		return nil, ""
	}
	var witnesses []Report
	for _, f := range r.failures {
		rep := f.rep
		if rep.Waiting > 0 && rep.WaitedFor >= 0 && rep.WaitedFor < len(r.members) && f.at-r.failures[0].at <= window {
			witnesses = append(witnesses, rep)
		}
	}
	// stuck reports whether the member of rank is a witness at step.
	stuck := func(rank int, step uint64) bool {
		for _, w := range witnesses {
			if w.Rank == rank && w.Applied == step {
				return true
			}
		}
		return false
	}
	// beats says whether witness a is starved before witness b.
	beats := func(a, b Report) bool {
		if a.Applied != b.Applied {
			return a.Applied < b.Applied
		}
		if aFirst, bFirst := !stuck(a.WaitedFor, a.Applied), !stuck(b.WaitedFor, b.Applied); aFirst != bFirst {
			return aFirst
		}
		return a.Frames < b.Frames
	}
	var starved *Report
	for i := range witnesses {
		if starved == nil || beats(witnesses[i], *starved) {
			starved = &witnesses[i]
		}
	}
	if starved == nil {
		return nil, ""
	}
	slow := r.members[starved.WaitedFor]
	return slow, fmt.Sprintf("%s (rank %d, %s) had waited %v for %s (rank %d, %s) after receiving %d frames of the collective when the ring failed on an all-reduce deadline",
		starved.Worker, starved.Rank, r.members[starved.Rank].Addr, starved.Waiting.Round(time.Millisecond),
		slow.ID, starved.WaitedFor, slow.Addr, starved.Frames)
}
