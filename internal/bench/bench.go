// Package bench is the scaling-efficiency benchmark suite behind
// cmd/ringbench: an all-reduce sweep over real processes with the machine's
// ceilings, weak and strong scaling of training, and time to accuracy, each
// run side by side with PyTorch DDP (gloo) when PyTorch is installed. It
// writes every measurement as JSON lines, a Markdown report and PNG plots.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"ringtrain/internal/mnist"
)

// Config selects what a run measures. DefaultConfig is the full suite;
// QuickConfig a few seconds of tiny sizes for CI.
type Config struct {
	// Out is the folder for results.jsonl, report.md and the plots.
	Out string
	// Suites to run: allreduce, weak, strong, tta, netsim (the simulated
	// network; it needs root and says it skipped otherwise).
	Suites []string
	// Workers are the worker counts for the training suites;
	// AllreduceWorkers those of the all-reduce sweep.
	Workers, AllreduceWorkers []int
	// Sizes of the sweep, bytes of float64 values; Iters and Repeats per
	// size.
	Sizes []int
	// Kinds are the element kinds the sweep also runs over the default
	// data plane, besides float64 (float32, fp16, bf16), each reducing
	// the same number of values, a size's bytes/8.
	Kinds          []string
	Iters, Repeats int
	// Steps caps the training runs of weak and strong scaling per model
	// and per-worker batch (see trainSteps); Quick makes them tiny, on the
	// first 6,000 training and 1,000 test images (quickTrain, quickTest).
	Quick bool
	// TTAEpochs bounds the time-to-accuracy runs; Target is the accuracy.
	TTAEpochs int
	Target    float64
	// Peer is "auto" (run PyTorch when importable), "off", or a Python
	// interpreter to use.
	Peer string
	// Scripts is the folder of the PyTorch peer scripts.
	Scripts string
	// ProfileDir, when set, receives a CPU profile of rank 0 of every
	// all-reduce sweep (allreduce-n<N>-rank0.prof).
	ProfileDir string
	// Exe is this program, started as helper processes and workers.
	Exe      string
	Progress io.Writer
}

// DefaultConfig is the full suite.
func DefaultConfig() Config {
	var sizes []int
	for s := 1 << 10; s <= 64<<20; s *= 4 {
		sizes = append(sizes, s)
	}
	return Config{
		Out: "bench-out", Suites: []string{"allreduce", "weak", "strong", "tta"},
		Workers: []int{1, 2, 4, 8}, AllreduceWorkers: []int{2, 4, 8},
		Sizes: sizes, Iters: 20, Repeats: 5, TTAEpochs: 8, Target: 0.93,
		Peer: "auto", Scripts: "bench", Progress: os.Stderr,
	}
}

// QuickConfig runs every suite on tiny sizes, to check that the suite works
// (structure, not speed).
func QuickConfig() Config {
	c := DefaultConfig()
	c.Quick = true
	c.Workers, c.AllreduceWorkers = []int{1, 2}, []int{2}
	c.Sizes = []int{1 << 10, 4 << 10}
	c.Iters, c.Repeats, c.TTAEpochs, c.Target = 3, 2, 1, 0.5
	return c
}

// Record is one measurement, one line of results.jsonl.
type Record struct {
	Suite string `json:"suite"` // allreduce, ceiling, weak, strong, tta
	Impl  string `json:"impl"`  // ringtrain, pytorch-gloo, tcp-loopback, memcpy
	// CPUs is the machine's core count; Oversubscribed marks runs with
	// more processes than cores.
	CPUs           int  `json:"cpus"`
	Workers        int  `json:"workers,omitempty"`
	Oversubscribed bool `json:"oversubscribed,omitempty"`

	Bytes     int     `json:"bytes,omitempty"`
	Seconds   float64 `json:"seconds,omitempty"`
	AlgBWGBps float64 `json:"algbw_gbps,omitempty"`
	BusBWGBps float64 `json:"busbw_gbps,omitempty"`

	Model            string     `json:"model,omitempty"`
	PerWorkerBatch   int        `json:"per_worker_batch,omitempty"`
	GlobalBatch      int        `json:"global_batch,omitempty"`
	Steps            int        `json:"steps,omitempty"`
	SamplesPerSecond float64    `json:"samples_per_second,omitempty"`
	StepMillis       *StepSplit `json:"step_ms,omitempty"`
	Efficiency       float64    `json:"efficiency,omitempty"`
	EpochSeconds     float64    `json:"epoch_seconds,omitempty"`
	Speedup          float64    `json:"speedup,omitempty"`
	TimeToAccuracy   float64    `json:"seconds_to_accuracy,omitempty"`
	Accuracy         float64    `json:"test_accuracy,omitempty"`
	// Target is the test accuracy a time-to-accuracy run had to reach.
	Target float64 `json:"target_accuracy,omitempty"`
	// LinkBits is the rate of a simulated link (suite netsim), bits per
	// second; zero means loopback.
	LinkBits int64  `json:"link_bits,omitempty"`
	Note     string `json:"note,omitempty"`
}

// StepSplit is a mean step time in milliseconds by part.
type StepSplit struct {
	Compute   float64 `json:"compute"`
	Allreduce float64 `json:"allreduce"`
	Optimizer float64 `json:"optimizer"`
}

// Run runs the suites cfg selects and writes the results into cfg.Out.
func Run(ctx context.Context, cfg Config) error {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(cfg.Out, "results.jsonl"))
	if err != nil {
		return err
	}
	defer f.Close()
	r := &runner{cfg: cfg, out: json.NewEncoder(f), cpus: runtime.NumCPU(), started: time.Now(),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if r.python, r.peerNote = findPeer(cfg.Peer); r.python != "" {
		r.logf("peer: %s", r.peerNote)
	} else {
		r.logf("peer skipped: %s", r.peerNote)
	}
	if err := r.prepare(); err != nil {
		return err
	}
	suites := map[string]func(context.Context) error{
		"allreduce": r.allreduce, "weak": r.weak, "strong": r.strong, "tta": r.timeToAccuracy, "netsim": r.netsim,
		"netsim-compression": r.netsimCompression, "netsim-overlap": r.netsimOverlap,
	}
	for _, s := range cfg.Suites {
		run, ok := suites[s]
		if !ok {
			return fmt.Errorf("bench: unknown suite %q (want allreduce, weak, strong, tta, netsim, netsim-compression or netsim-overlap)", s)
		}
		r.logf("suite %s", s)
		if err := run(ctx); err != nil {
			return fmt.Errorf("bench: suite %s: %w", s, err)
		}
	}
	if err := r.report(); err != nil {
		return err
	}
	r.logf("done in %v: %s", time.Since(r.started).Round(time.Second), cfg.Out)
	return nil
}

// runner is one run of the suite.
type runner struct {
	cfg      Config
	out      *json.Encoder
	records  []Record
	cpus     int
	started  time.Time
	python   string
	peerNote string
	dataDir  string
	log      *slog.Logger
	// train and test are the MNIST sets of the training runs, read once
	// (data).
	train, test *mnist.Set
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "[%6.1fs] %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
	}
}

// add records a measurement.
func (r *runner) add(rec Record) error {
	rec.CPUs = r.cpus
	rec.Oversubscribed = rec.Workers > r.cpus
	r.records = append(r.records, rec)
	return r.out.Encode(rec)
}

// find returns the records matching pred.
func (r *runner) find(pred func(Record) bool) []Record {
	return slices.DeleteFunc(slices.Clone(r.records), func(x Record) bool { return !pred(x) })
}

// note explains a run with more processes than cores.
func (r *runner) note(workers int) string {
	if workers > r.cpus {
		return fmt.Sprintf("%d processes on %d cores", workers, r.cpus)
	}
	return ""
}

func joinInts(v []int) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ",")
}
