package coordinator

import (
	"math"

	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// finish ends a completed job: final evaluation, checkpoint, summary, and a
// Stop for every worker.
func (c *coordinator) finish(s *supervisor) (*Summary, error) {
	final := s.final
	loss, acc := c.evaluate(final.Params)
	sum := c.summary(s, StatusCompleted)
	last := &sum.EpochMetrics[len(sum.EpochMetrics)-1]
	last.Epoch, last.Step, last.TestLoss, last.TestAccuracy = len(sum.EpochMetrics), final.Header.Step, Metric(loss), Metric(acc)
	sum.TestLoss, sum.TestAccuracy, sum.StepsDone = Metric(loss), Metric(acc), final.Header.Step
	sum.WeightsSHA256 = wire.WeightsSHA256(final.Params)
	s.rep.progress.finish(*last)
	err := c.saveOutputs(sum, final, s)
	if err != nil {
		// The summary still says what the training did, and why the job
		// failed.
		sum.Status, sum.Error = StatusFailed, err.Error()
		if werr := c.writeSummary(sum); werr != nil {
			c.log.Error("cannot write the summary", "err", werr)
		}
		c.log.Error("job failed", "err", err)
		c.stopAll(&pb.Stop{Reason: err.Error(), Failed: true})
		close(c.done)
		return nil, err
	}
	c.stopAll(&pb.Stop{})
	close(c.done)
	c.log.Info("job complete", "test_accuracy", acc, "samples_per_second", math.Round(sum.SamplesPerSecond),
		"wall_seconds", math.Round(sum.WallSeconds*1000)/1000, "end_to_end_seconds", math.Round(sum.EndToEndSeconds*1000)/1000)
	return sum, nil
}
