package coordinator

import (
	"time"

	"ringtrain/internal/control"
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

// controlReport is the part of a worker's report the ring lifecycle
// decides on.
func controlReport(r *pb.WorkerReport) control.Report {
	status := control.ReportStep
	switch r.Status {
	case pb.ReportStatus_PAUSED:
		status = control.ReportPaused
	case pb.ReportStatus_FAILED:
		status = control.ReportFailed
	}
	return control.Report{Worker: r.WorkerId, Ring: r.Generation, Rank: int(r.Rank), Status: status, Step: r.Step,
		Steps: max(len(r.Losses), 1), Applied: r.Applied, Finished: r.Finished, Leaving: r.Leaving, Fatal: r.Fatal,
		NonfiniteHere: r.NonfiniteHere, TimedOut: r.TimedOut, Secondary: r.Secondary, Waiting: time.Duration(r.WaitingNs),
		WaitedFor: int(r.WaitedFor), Frames: r.FramesReceived, Error: r.Error, HasHash: r.HasHash, Hash: r.WeightsHash}
}

// latestState is the newest full state the coordinator holds.
func (c *coordinator) latestState(s *supervisor) *wire.State {
	if s.latest != nil {
		return s.latest
	}
	return c.initial
}

// stopAll queues a Stop for every worker and waits, briefly, for the Join
// handlers to deliver it.
func (c *coordinator) stopAll(st *pb.Stop) {
	c.joinMu.Lock()
	c.ending, c.over = true, st
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
	s.rep.progress.abort()
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
