package cli

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"testing"

	"ringtrain/internal/mnist"
	"ringtrain/internal/mnist/mnisttest"
	"ringtrain/internal/testmain"
)

// TestCrossValidation runs 3 folds of a short job in process workers on
// the first 3,000 training images: each fold validates on a third of the
// training set, the folds differ, and the mean and spread are those of the
// folds.
func TestCrossValidation(t *testing.T) {
	if _, err := mnist.DefaultDir(); err != nil {
		t.Skip(err)
	}
	data := t.TempDir()
	if err := mnisttest.WriteSubset(data, 3000, 100); err != nil {
		t.Fatal(err)
	}
	j := newJobFlags()
	j.in.DataDir = data
	j.cfg.LocalWorkers, j.cfg.Batch, j.cfg.MaxSteps = 2, 16, 150
	j.cfg.Progress, j.cfg.Logger = nil, slog.New(slog.NewTextHandler(io.Discard, nil))
	j.cfg.MetricsListen = "-"
	j.in.Workers.Command, j.in.Workers.Output = workerCommand(t), io.Discard
	cfg, err := j.in.Job(j.cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := crossValidate(context.Background(), cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	seen := map[float64]bool{}
	for _, f := range res.Folds {
		if f.Validation != 1000 {
			t.Fatalf("fold %d validated on %d images, want 1000", f.Fold, f.Validation)
		}
		if f.Accuracy < 0.5 || f.Accuracy > 1 {
			t.Fatalf("fold %d: accuracy %v", f.Fold, f.Accuracy)
		}
		seen[f.Accuracy] = true
		sum += f.Accuracy
	}
	if len(res.Folds) != 3 || len(seen) < 2 {
		t.Fatalf("folds %+v: want three, not all alike", res.Folds)
	}
	if math.Abs(res.MeanAccuracy-sum/3) > 1e-12 || res.StdAccuracy <= 0 || res.MinAccuracy > res.MeanAccuracy || res.MaxAccuracy < res.MeanAccuracy {
		t.Fatalf("summary %+v does not match the folds", res)
	}
	t.Logf("%.4f ± %.4f", res.MeanAccuracy, res.StdAccuracy)
}

// TestMain lets the test binary serve as the local workers' executable.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		// os.Exit: a race in the child must still end it with the race
		// runtime's status 66 (its pause is off: GORACE, set by Run).
		os.Exit(Worker(os.Args[2:]))
	}
	testmain.Run(m)
}

// workerCommand starts a worker from this test binary.
func workerCommand(t *testing.T) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, "worker"}
}
