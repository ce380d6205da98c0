package coordinator

import (
	"fmt"

	"ringtrain/internal/charts"
	"ringtrain/internal/nn"
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
	s.progress.finish(*last)
	err := c.writeOutputs(sum, final)
	if err == nil && c.cfg.Trace != "" {
		err = c.writeTrace(c.cfg.Trace, s)
	}
	if err == nil && c.cfg.Plot != "" {
		err = plotEpochs(c.cfg.Plot, sum)
	}
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
	c.log.Info("job complete", "test_accuracy", acc, "samples_per_second", sum.SamplesPerSecond, "wall_seconds", sum.WallSeconds)
	return sum, nil
}

// writeOutputs writes the checkpoint and the summary where configured.
func (c *coordinator) writeOutputs(sum *Summary, final *wire.State) error {
	if path := c.cfg.Checkpoint; path != "" {
		ck := &nn.Checkpoint{Spec: c.spec, Seed: c.job.Seed, Epoch: uint64(sum.Epochs), Step: final.Header.Step,
			Params: final.Params, Optimizer: final.Opt}
		if _, err := ck.Model(); err != nil {
			return fmt.Errorf("coordinator: final state does not fit the model: %w", err)
		}
		if err := nn.SaveCheckpoint(path, ck); err != nil {
			return err
		}
		sum.Checkpoint = path
	}
	return c.writeSummary(sum)
}

// plotEpochs draws the training loss and the test accuracy per epoch.
func plotEpochs(path string, sum *Summary) error {
	var epochs, train, test, acc []float64
	for _, e := range sum.EpochMetrics {
		if e.Epoch == 0 || !e.TrainLoss.Known() || !e.TestLoss.Known() || !e.TestAccuracy.Known() {
			continue // not ended, or not known
		}
		epochs = append(epochs, float64(e.Epoch))
		train, test, acc = append(train, float64(e.TrainLoss)), append(test, float64(e.TestLoss)), append(acc, float64(e.TestAccuracy))
	}
	title := fmt.Sprintf("%d workers, global batch %d", sum.Workers, sum.GlobalBatch)
	return charts.Save(path,
		charts.Chart{Title: "Loss (" + title + ")", XLabel: "epoch", YLabel: "loss",
			Series: []charts.Series{{Name: "training", X: epochs, Y: train}, {Name: "test", X: epochs, Y: test}}},
		charts.Chart{Title: "Test accuracy", XLabel: "epoch", YLabel: "accuracy",
			Series: []charts.Series{{Name: "test accuracy", X: epochs, Y: acc}}})
}
