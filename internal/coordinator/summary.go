package coordinator

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"time"

	"ringtrain/internal/atomicfile"
)

// Metric is a measured value that may be unknown: a loss that diverged
// to NaN or ±Inf, or an epoch a resumed job has no record of. A Metric
// that is not finite is left out of the JSON (its field has omitzero): a
// summary is always valid JSON, whatever the numbers.
type Metric float64

// Unknown is a Metric with no value.
var Unknown = Metric(math.NaN())

// IsZero reports whether m has no finite value; encoding/json leaves such
// a field out.
func (m Metric) IsZero() bool { return !m.Known() }

// Known reports whether m is a finite value.
func (m Metric) Known() bool { return !math.IsNaN(float64(m)) && !math.IsInf(float64(m), 0) }

// The ways a job ends (Summary.Status).
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Summary is the machine-readable account of a job, written when it ends,
// whether it completed or failed. Metrics that are not known (not
// evaluated, or not finite) are absent.
type Summary struct {
	JobID string `json:"job_id"`
	// Status is StatusCompleted or StatusFailed; Error says why a job
	// failed.
	Status         string `json:"status"`
	Error          string `json:"error,omitempty"`
	Workers        int    `json:"workers"`
	PerWorkerBatch int    `json:"per_worker_batch"`
	GlobalBatch    int    `json:"global_batch"`
	Epochs         int    `json:"epochs"`
	StepsPerEpoch  int    `json:"steps_per_epoch"`
	// Steps is the number of steps the job was to train; StepsDone how
	// many every replica holds at its end.
	Steps     int    `json:"steps"`
	StepsDone uint64 `json:"steps_done"`
	// WallSeconds is the training time: the longest of the workers' loops
	// from their first step to their last.
	WallSeconds float64 `json:"wall_seconds"`
	// SamplesPerSecond is the training throughput: the samples of the
	// steps done over WallSeconds.
	SamplesPerSecond float64 `json:"samples_per_second"`
	// EndToEndSeconds is the job's whole time, which the training
	// throughput leaves out of its account: from the coordinator's start
	// (loading the data, starting the workers, sending their shards and
	// the state) to the summary (the evaluations and the final one
	// included).
	EndToEndSeconds float64 `json:"end_to_end_seconds"`
	TestAccuracy    Metric  `json:"test_accuracy,omitzero"`
	TestLoss        Metric  `json:"test_loss,omitzero"`
	// FinalLoss is the training loss of the last step, over the global
	// batch.
	FinalLoss Metric `json:"final_loss,omitzero"`
	// StartWorkers is the ring size the job started with; Workers the one
	// it ended with. ResumedFrom is the checkpoint step it resumed at.
	StartWorkers int    `json:"start_workers"`
	ResumedFrom  uint64 `json:"resumed_from,omitempty"`
	// Rings counts the generations of the ring.
	Rings int `json:"rings"`
	// Record is what the job recorded while it trained (the part of the
	// summary that a checkpoint's history carries across restarts).
	Record
	// Folds and Fold identify a cross-validation fold; the test metrics
	// are then the held-out fold's.
	Folds int `json:"folds,omitempty"`
	Fold  int `json:"fold,omitempty"`
	// TestImages is the number of images the test metrics are over.
	TestImages int `json:"test_images"`
	// WeightsSHA256 hashes the final parameters as little-endian float64 in
	// the model's canonical order.
	WeightsSHA256 string  `json:"weights_sha256,omitempty"`
	Model         string  `json:"model"`
	LearningRate  float64 `json:"learning_rate"`
	WarmupSteps   int     `json:"warmup_steps"`
	Seed          uint64  `json:"seed"`
	// StepMillis splits rank 0's mean step time into its parts.
	StepMillis   StepMillis     `json:"step_ms"`
	EpochMetrics []EpochMetrics `json:"epoch_metrics"`
	// Deterministic mode: micro-batch size, final fixed-point resolution
	// and how often it had to be lowered.
	Deterministic  bool   `json:"deterministic"`
	MicroBatch     int    `json:"micro_batch,omitempty"`
	FixedPointBits int    `json:"fixed_point_bits,omitempty"`
	Checkpoint     string `json:"checkpoint,omitempty"`
	CPUs           int    `json:"cpus"`
	GoVersion      string `json:"go_version"`
	// Compression is how the gradients travelled, fp16 or bf16; empty
	// for uncompressed.
	Compression string `json:"compression,omitempty"`
}

// Record is what a job records while it trains, besides its metrics: every
// worker lost, joined or left (MembershipChanges), the steps undone after a
// failure (Rollbacks) and the time from each failure to the next completed
// step (RecoverySeconds), the steps each worker computed (WorkerSteps), the
// checkpoints written, the steps no replica applied because a gradient was
// not finite (SkippedSteps, under Config.NonFinite skip), the replica
// comparisons that agreed, and how often deterministic mode lowered its
// fixed-point resolution.
type Record struct {
	MembershipChanges  []MembershipChange `json:"membership_changes"`
	Rollbacks          int                `json:"rollbacks"`
	RecoverySeconds    []float64          `json:"recovery_seconds"`
	WorkerSteps        map[string]uint64  `json:"worker_steps"`
	Checkpoints        []string           `json:"checkpoints,omitempty"`
	SkippedSteps       uint64             `json:"skipped_steps"`
	ReplicaChecks      int                `json:"replica_checks"`
	FixedPointRescales int                `json:"fixed_point_rescales"`
}

// StepMillis is a mean step time in milliseconds, by part.
type StepMillis struct {
	Compute   float64 `json:"compute"`
	Allreduce float64 `json:"allreduce"`
	Optimizer float64 `json:"optimizer"`
}

// EpochMetrics records one epoch. Metrics not known (an epoch that did not
// end, an evaluation that did not run, a loss that is not finite) are
// absent from the JSON.
type EpochMetrics struct {
	Epoch int    `json:"epoch"`
	Step  uint64 `json:"step"`
	// WallSeconds is the training time at the epoch's end, from rank 0's
	// first step.
	WallSeconds  float64 `json:"wall_seconds"`
	TrainLoss    Metric  `json:"train_loss,omitzero"`
	TestLoss     Metric  `json:"test_loss,omitzero"`
	TestAccuracy Metric  `json:"test_accuracy,omitzero"`
}

// UnmarshalJSON decodes an epoch's metrics; those left out are unknown.
func (e *EpochMetrics) UnmarshalJSON(data []byte) error {
	type plain EpochMetrics // without this method
	p := plain{TrainLoss: Unknown, TestLoss: Unknown, TestAccuracy: Unknown}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*e = EpochMetrics(p)
	return nil
}

// unknownEpochs returns n epochs with no metrics yet.
func unknownEpochs(n int) []EpochMetrics {
	e := make([]EpochMetrics, n)
	for i := range e {
		e[i].TrainLoss, e[i].TestLoss, e[i].TestAccuracy = Unknown, Unknown, Unknown
	}
	return e
}

// summary builds the job's summary from what the supervisor recorded, as
// it stands: the caller adds the final evaluation of a completed job.
func (c *coordinator) summary(s *supervisor, status string) *Summary {
	h := &s.rep.history
	workers := s.m.Workers()
	for i := range h.Epochs {
		h.Epochs[i].TrainLoss = s.rep.epochTrainLoss(i)
	}
	wall := time.Duration(s.rep.trainNs).Seconds()
	sum := &Summary{
		JobID: c.job.JobId, Status: status, Workers: workers, StartWorkers: c.cfg.world(), PerWorkerBatch: int(c.job.PerWorkerBatch),
		GlobalBatch: c.globalBatch(), Epochs: len(h.Epochs), StepsPerEpoch: int(c.job.StepsPerEpoch), Steps: int(c.job.MaxSteps),
		StepsDone: s.m.Reported(), ResumedFrom: c.startStep, WallSeconds: wall,
		TestAccuracy: Unknown, TestLoss: Unknown, FinalLoss: Metric(h.LastLoss),
		Model: c.spec.Summary(), LearningRate: c.job.PeakLearningRate, WarmupSteps: int(c.job.WarmupSteps), Seed: c.job.Seed,
		EpochMetrics: h.Epochs, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Deterministic: c.job.Deterministic, MicroBatch: int(c.job.MicroBatch), Compression: c.job.Compression,
		FixedPointBits: s.rep.fixedPointBits, Rings: h.Rings + int(s.m.Rings()), Record: h.Record, TestImages: c.test.Count,
	}
	if done := s.m.Reported() - min(s.m.Reported(), c.startStep); wall > 0 {
		sum.SamplesPerSecond = float64(done) * float64(c.globalBatch()) / wall
	}
	if !c.begun.IsZero() {
		sum.EndToEndSeconds = time.Since(c.begun).Seconds()
	}
	if c.cfg.Folds > 1 {
		sum.Folds, sum.Fold = c.cfg.Folds, c.cfg.Fold
	}
	if h.TimedN > 0 {
		t := h.Timing
		sum.StepMillis = StepMillis{Compute: t.Compute / h.TimedN, Allreduce: t.Allreduce / h.TimedN, Optimizer: t.Optimizer / h.TimedN}
	}
	return sum
}

// writeSummary writes sum where Config.Summary says, atomically.
func (c *coordinator) writeSummary(sum *Summary) error {
	path := c.cfg.Summary
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("coordinator: encode the summary: %w", err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("coordinator: write summary: %w", err)
	}
	return nil
}
