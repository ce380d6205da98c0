package coordinator

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"

	"ringtrain/internal/charts"
	"ringtrain/internal/nn"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// Summary is the machine-readable account of a finished job.
type Summary struct {
	JobID          string `json:"job_id"`
	Workers        int    `json:"workers"`
	PerWorkerBatch int    `json:"per_worker_batch"`
	GlobalBatch    int    `json:"global_batch"`
	Epochs         int    `json:"epochs"`
	StepsPerEpoch  int    `json:"steps_per_epoch"`
	Steps          int    `json:"steps"`
	// WallSeconds is the training time: the longest of the workers' loops
	// from their first step to their last.
	WallSeconds      float64 `json:"wall_seconds"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	TestAccuracy     float64 `json:"test_accuracy"`
	TestLoss         float64 `json:"test_loss"`
	// FinalLoss is the training loss of the last step, over the global
	// batch.
	FinalLoss float64 `json:"final_loss"`
	// StartWorkers is the ring size the job started with; Workers the one
	// it ended with. ResumedFrom is the checkpoint step it resumed at.
	StartWorkers int    `json:"start_workers"`
	ResumedFrom  uint64 `json:"resumed_from,omitempty"`
	// Rings counts the generations of the ring; MembershipChanges lists
	// every worker lost, joined or left; Rollbacks counts steps undone
	// after a failure and RecoverySeconds the time from each failure to
	// the next completed step. WorkerSteps is how many steps each worker
	// computed.
	Rings             int                `json:"rings"`
	MembershipChanges []MembershipChange `json:"membership_changes"`
	Rollbacks         int                `json:"rollbacks"`
	RecoverySeconds   []float64          `json:"recovery_seconds"`
	WorkerSteps       map[string]uint64  `json:"worker_steps"`
	Checkpoints       []string           `json:"checkpoints,omitempty"`
	// SkippedSteps counts the steps no replica applied because a gradient
	// was not finite (Config.NonFinite skip).
	SkippedSteps uint64 `json:"skipped_steps"`
	// Folds and Fold identify a cross-validation fold; the test metrics
	// are then the held-out fold's.
	Folds int `json:"folds,omitempty"`
	Fold  int `json:"fold,omitempty"`
	// TestImages is the number of images the test metrics are over.
	TestImages int `json:"test_images"`
	// WeightsSHA256 hashes the final parameters as little-endian float64 in
	// the model's canonical order.
	WeightsSHA256 string  `json:"weights_sha256"`
	Model         string  `json:"model"`
	LearningRate  float64 `json:"learning_rate"`
	WarmupSteps   int     `json:"warmup_steps"`
	Seed          uint64  `json:"seed"`
	// StepMillis splits rank 0's mean step time into its parts.
	StepMillis    StepMillis     `json:"step_ms"`
	ReplicaChecks int            `json:"replica_checks"`
	EpochMetrics  []EpochMetrics `json:"epoch_metrics"`
	// Deterministic mode: micro-batch size, final fixed-point resolution
	// and how often it had to be lowered.
	Deterministic      bool   `json:"deterministic"`
	MicroBatch         int    `json:"micro_batch,omitempty"`
	FixedPointBits     int    `json:"fixed_point_bits,omitempty"`
	FixedPointRescales int    `json:"fixed_point_rescales"`
	Checkpoint         string `json:"checkpoint,omitempty"`
	CPUs               int    `json:"cpus"`
	GoVersion          string `json:"go_version"`
}

// StepMillis is a mean step time in milliseconds, by part.
type StepMillis struct {
	Compute   float64 `json:"compute"`
	Allreduce float64 `json:"allreduce"`
	Optimizer float64 `json:"optimizer"`
}

// EpochMetrics records one epoch.
type EpochMetrics struct {
	Epoch int    `json:"epoch"`
	Step  uint64 `json:"step"`
	// WallSeconds is the training time at the epoch's end, from rank 0's
	// first step.
	WallSeconds  float64 `json:"wall_seconds"`
	TrainLoss    float64 `json:"train_loss"`
	TestLoss     float64 `json:"test_loss"`
	TestAccuracy float64 `json:"test_accuracy"`
}

// finish ends a completed job: final evaluation, checkpoint, summary, and a
// Stop for every worker.
func (c *coordinator) finish(s *supervisor) (*Summary, error) {
	final := s.final
	loss, acc := c.evaluate(final.Params)
	for i := range s.epochs {
		s.epochs[i].TrainLoss = s.epochTrainLoss(c, i)
	}
	last := &s.epochs[len(s.epochs)-1]
	last.Epoch, last.Step, last.TestLoss, last.TestAccuracy = len(s.epochs), final.Header.Step, loss, acc
	s.progress.finish(*last)

	steps := int(c.job.MaxSteps - c.startStep)
	wall := time.Duration(s.trainNs).Seconds()
	sum := &Summary{
		JobID: c.job.JobId, Workers: len(s.ring.members), StartWorkers: c.cfg.world(), PerWorkerBatch: int(c.job.PerWorkerBatch),
		GlobalBatch: c.globalBatch(), Epochs: len(s.epochs), StepsPerEpoch: int(c.job.StepsPerEpoch), Steps: int(c.job.MaxSteps),
		ResumedFrom: c.startStep, WallSeconds: wall, SamplesPerSecond: float64(steps*c.globalBatch()) / wall,
		TestAccuracy: acc, TestLoss: loss, FinalLoss: s.lastLoss,
		WeightsSHA256: wire.WeightsSHA256(final.Params), Model: c.spec.Summary(),
		LearningRate: c.job.PeakLearningRate, WarmupSteps: int(c.job.WarmupSteps), Seed: c.job.Seed,
		ReplicaChecks: s.replicaChecks, EpochMetrics: s.epochs, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Deterministic: c.job.Deterministic, MicroBatch: int(c.job.MicroBatch),
		FixedPointBits: s.fixedPointBits, FixedPointRescales: s.rescales,
		Rings: int(s.genSeq), MembershipChanges: s.changes, Rollbacks: s.rollbacks, RecoverySeconds: s.recoveries,
		WorkerSteps: s.workerSteps, Checkpoints: s.checkpoints, SkippedSteps: s.skipped,
	}
	if c.cfg.Folds > 1 {
		sum.Folds, sum.Fold = c.cfg.Folds, c.cfg.Fold
	}
	sum.TestImages = c.test.Count
	if s.timedN > 0 {
		sum.StepMillis = StepMillis{Compute: s.timing.Compute / s.timedN, Allreduce: s.timing.Allreduce / s.timedN, Optimizer: s.timing.Optimizer / s.timedN}
	}
	err := c.writeOutputs(sum, final)
	if err == nil && c.cfg.Trace != "" {
		err = c.writeTrace(c.cfg.Trace, s)
	}
	if err == nil && c.cfg.Plot != "" {
		err = plotEpochs(c.cfg.Plot, sum)
	}
	if err != nil {
		c.stopAll(&pb.Stop{Reason: err.Error(), Failed: true})
	} else {
		c.stopAll(&pb.Stop{})
	}
	close(c.done)
	if err != nil {
		return nil, err
	}
	c.log.Info("job complete", "test_accuracy", acc, "samples_per_second", sum.SamplesPerSecond, "wall_seconds", wall)
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
	if path := c.cfg.Summary; path != "" {
		data, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("coordinator: write summary: %w", err)
		}
	}
	return nil
}

// plotEpochs draws the training loss and the test accuracy per epoch.
func plotEpochs(path string, sum *Summary) error {
	var epochs, train, test, acc []float64
	for _, e := range sum.EpochMetrics {
		epochs = append(epochs, float64(e.Epoch))
		train, test, acc = append(train, e.TrainLoss), append(test, e.TestLoss), append(acc, e.TestAccuracy)
	}
	title := fmt.Sprintf("%d workers, global batch %d", sum.Workers, sum.GlobalBatch)
	return charts.Save(path,
		charts.Chart{Title: "Loss (" + title + ")", XLabel: "epoch", YLabel: "loss",
			Series: []charts.Series{{Name: "training", X: epochs, Y: train}, {Name: "test", X: epochs, Y: test}}},
		charts.Chart{Title: "Test accuracy", XLabel: "epoch", YLabel: "accuracy",
			Series: []charts.Series{{Name: "test accuracy", X: epochs, Y: acc}}})
}
