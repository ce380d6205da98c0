package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/stat"

	"ringtrain/internal/coordinator"
)

// CV is k-fold cross-validation: it trains one model per fold of the
// training set, each on the other folds and validated on its own, with the
// coordinator's training flags (-local-workers N makes every fold a
// distributed job), and reports the mean and spread of the validation
// accuracy.
func CV(args []string) int {
	j := newJobFlags()
	fs, logs := coordinatorFlags(j)
	folds := fs.Int("folds", 5, "number of folds, 2 or more")
	out := fs.String("cv-summary", "ringtrain-cv.json", "JSON file of every fold's metrics and their mean and standard deviation (empty: none)")
	fs.Usage = usage(fs, "coordinator cv [-folds K] [-local-workers N] [training flags]")
	if status, ok := parseCommand(fs, "cv", args); !ok {
		return status
	}
	if j.cfg.Workers > 0 {
		fmt.Fprintln(os.Stderr, "cv: the folds run one after another with local workers: give -local-workers N, not -workers")
		return 2
	}
	if j.cfg.LocalWorkers == 0 {
		j.cfg.LocalWorkers = 1
	}
	if err := coordinatorLogging(j, logs); err != nil {
		fmt.Fprintln(os.Stderr, "cv:", err)
		return 2
	}
	cfg, err := j.in.Job(j.cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cv:", err)
		return 2
	}
	if *out != "" {
		// Checked before the folds train, not after.
		if err := coordinator.CheckOutputFile("-cv-summary", *out, cfg.Overwrite); err != nil {
			fmt.Fprintln(os.Stderr, "cv:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := crossValidate(ctx, cfg, *folds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cv:", strings.TrimPrefix(err.Error(), "coordinator: "))
		return 1
	}
	for _, f := range res.Folds {
		fmt.Printf("fold %d/%d: validation accuracy %.4f, loss %.4f, %d validation images, %.1f s\n",
			f.Fold+1, res.K, f.Accuracy, f.Loss, f.Validation, f.Seconds)
	}
	fmt.Printf("%d-fold cross-validation, %s: validation accuracy %.4f ± %.4f (mean ± sample standard deviation), min %.4f, max %.4f\n",
		res.K, res.Model, res.MeanAccuracy, res.StdAccuracy, res.MinAccuracy, res.MaxAccuracy)
	if *out != "" {
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "cv:", err)
			return 1
		}
	}
	return 0
}

// CVResult is a cross-validation's outcome.
type CVResult struct {
	K       int      `json:"folds"`
	Model   string   `json:"model"`
	Workers int      `json:"workers"`
	Folds   []CVFold `json:"fold_results"`
	// The validation accuracy's mean, sample standard deviation and range.
	MeanAccuracy float64 `json:"mean_accuracy"`
	StdAccuracy  float64 `json:"std_accuracy"`
	MinAccuracy  float64 `json:"min_accuracy"`
	MaxAccuracy  float64 `json:"max_accuracy"`
}

// CVFold is one fold's outcome.
type CVFold struct {
	Fold       int                `json:"fold"`
	Accuracy   float64            `json:"validation_accuracy"`
	Loss       coordinator.Metric `json:"validation_loss,omitzero"` // absent when not finite
	Validation int                `json:"validation_images"`
	Seconds    float64            `json:"seconds"`
}

// crossValidate runs the folds one after another.
func crossValidate(ctx context.Context, cfg coordinator.Config, k int) (*CVResult, error) {
	if k < 2 {
		return nil, fmt.Errorf("%d folds: want 2 or more", k)
	}
	res := &CVResult{K: k, Workers: cfg.LocalWorkers}
	var accs []float64
	for fold := range k {
		c := cfg
		c.Folds, c.Fold = k, fold
		c.Checkpoint, c.Summary, c.CheckpointDir, c.Trace, c.Plot = "", "", "", "", ""
		start := time.Now()
		sum, err := coordinator.Run(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("fold %d of %d: %w", fold+1, k, err)
		}
		res.Model = sum.Model
		res.Folds = append(res.Folds, CVFold{Fold: fold, Accuracy: float64(sum.TestAccuracy), Loss: sum.TestLoss,
			Validation: sum.TestImages, Seconds: time.Since(start).Seconds()})
		accs = append(accs, float64(sum.TestAccuracy))
	}
	res.MeanAccuracy, res.StdAccuracy = stat.MeanStdDev(accs, nil)
	res.MinAccuracy, res.MaxAccuracy = floats.Min(accs), floats.Max(accs)
	return res, nil
}
