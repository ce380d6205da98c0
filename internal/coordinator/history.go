package coordinator

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"ringtrain/internal/atomicfile"
)

// history is what the summary reports about a job's training: per-epoch
// metrics, membership changes, rollbacks, timings. The reporter keeps it up
// to date, and a copy is saved beside every checkpoint, so that a
// coordinator resumed from a checkpoint reports the whole job and not only
// the steps since its restart.
type history struct {
	// Step is the step the saved copy covers: the checkpoint's.
	Step   uint64         `json:"step"`
	Epochs []EpochMetrics `json:"epochs"`
	// LossSum and LossCount carry, per epoch, the sum and the number of
	// the training losses reported before Step by earlier coordinators;
	// the reporter's own are in reporter.losses.
	LossSum   []float64 `json:"loss_sum"`
	LossCount []int     `json:"loss_count"`
	// LastLoss is the training loss of the newest step reported.
	LastLoss Metric `json:"last_loss,omitzero"`
	// Rings counts the ring generations of earlier coordinators.
	Rings int `json:"rings"`
	Record
	// FixedPointBits is the deterministic mode's resolution at Step (0:
	// not deterministic): a resumed job goes on at it, so that its
	// weights are those of a job that was never interrupted.
	FixedPointBits int `json:"fixed_point_bits,omitempty"`
	// Timing sums rank 0's step times over TimedN steps.
	Timing StepMillis `json:"timing_sum"`
	TimedN float64    `json:"timed_steps"`
}

// newHistory is the history of a job of the given number of epochs that
// has not started.
func newHistory(epochs int) history {
	return history{Epochs: unknownEpochs(epochs), LossSum: make([]float64, epochs), LossCount: make([]int, epochs),
		LastLoss: Unknown, Record: Record{WorkerSteps: map[string]uint64{}}}
}

// historyPath is where the history of the checkpoint at ckptPath goes.
func historyPath(ckptPath string) string {
	return strings.TrimSuffix(ckptPath, ".ckpt") + ".history.json"
}

// saveHistory writes h beside the checkpoint at ckptPath.
func saveHistory(ckptPath string, h *history) error {
	data, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("coordinator: encode the job's history: %w", err)
	}
	if err := atomicfile.Write(historyPath(ckptPath), data, 0o644); err != nil {
		return fmt.Errorf("coordinator: write the job's history: %w", err)
	}
	return nil
}

// loadHistory reads the history saved beside the checkpoint at ckptPath,
// for a job of the given number of epochs resumed at step. A missing,
// corrupt or mismatched file is an error; the caller goes on without it.
func loadHistory(ckptPath string, step uint64, epochs int) (*history, error) {
	data, err := os.ReadFile(historyPath(ckptPath))
	if err != nil {
		return nil, err
	}
	h := newHistory(epochs)
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", historyPath(ckptPath), err)
	}
	if h.Step != step || len(h.Epochs) != epochs || len(h.LossSum) != epochs || len(h.LossCount) != epochs {
		return nil, fmt.Errorf("%s: covers step %d and %d epochs, not the checkpoint's step %d of a job of %d epochs",
			historyPath(ckptPath), h.Step, len(h.Epochs), step, epochs)
	}
	if h.WorkerSteps == nil {
		h.WorkerSteps = map[string]uint64{}
	}
	return &h, nil
}
