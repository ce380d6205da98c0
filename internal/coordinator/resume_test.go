package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/worker"
)

// onCheckpoint is a log handler that calls fn with the step of every
// checkpoint written.
type onCheckpoint struct{ fn func(step uint64) }

func (h onCheckpoint) Enabled(context.Context, slog.Level) bool { return true }
func (h onCheckpoint) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "checkpoint written" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "step" {
				h.fn(a.Value.Uint64())
			}
			return true
		})
	}
	return nil
}
func (h onCheckpoint) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onCheckpoint) WithGroup(string) slog.Handler      { return h }

// onLine writes to w the progress lines that contain text.
type onLine struct {
	text string
	w    io.Writer
}

func (o onLine) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(o.text)) {
		o.w.Write(b)
	}
	return len(b), nil
}

// TestResumeAfterAnEpochReportsTheWholeJob stops a three-epoch job once a
// checkpoint past its first epoch is written and resumes it with a new
// coordinator on the same checkpoint folder, the workers staying up: the
// resumed job's summary covers the whole job, the epoch trained before the
// restart included, and every number in it is finite. (The restarted
// coordinator used to have no training loss for that epoch, and the NaN
// it computed instead failed the summary's encoding at the very end.)
func TestResumeAfterAnEpochReportsTheWholeJob(t *testing.T) {
	t.Parallel() // its workers wait to reconnect
	dir := t.TempDir()
	cfg := testConfig(t, 2)
	// 300 steps on the package's 6,400 images, at ten times the default
	// learning rate: they train the model past 0.8 accuracy, as 400 steps
	// at the default rate do. Three epochs, not two: the shutdown needs a
	// checkpoint written after epoch 1's evaluation ended, and with one
	// epoch left the workers could finish it while the coordinator still
	// evaluated (it happened once, idle, under -race).
	cfg.LR = 0.01
	cfg.Epochs, cfg.CheckpointDir, cfg.CheckpointEvery = 3, filepath.Join(dir, "ckpt"), 20
	cfg.Summary = filepath.Join(dir, "summary.json")
	const stepsPerEpoch = 6400 / 64

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range workerIDs(2) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := testWorker(addr, id)
			wc.ReconnectTimeout = time.Minute // the coordinator restarts
			errs[i] = worker.Run(ctx, wc)
		}()
	}

	// First coordinator: shut down once a checkpoint past epoch 1 exists,
	// written after epoch 1's evaluation ended (the workers go on training
	// while the coordinator evaluates; a checkpoint written meanwhile holds
	// no test figures for the epoch, and a job shut down then has none).
	shutdown := make(chan struct{})
	var once sync.Once
	evaluated := &firstWrite{ch: make(chan struct{})}
	first := cfg
	first.Listener, first.Shutdown = lis, shutdown
	first.Progress = onLine{"epoch 1/3 done", evaluated}
	first.Logger = slog.New(onCheckpoint{func(step uint64) {
		select {
		case <-evaluated.ch:
			if step > stepsPerEpoch {
				once.Do(func() { close(shutdown) })
			}
		default:
		}
	}})
	if _, err := Run(ctx, first); !errors.Is(err, ErrShutdown) {
		cancel()
		wg.Wait()
		t.Fatalf("first coordinator: %v, want a shutdown", err)
	}

	second := cfg
	if second.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(ctx, second)
	wg.Wait()
	if err != nil {
		t.Fatalf("resumed coordinator: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("worker %d: %v", i, e)
		}
	}
	if sum.ResumedFrom <= stepsPerEpoch {
		t.Fatalf("resumed from step %d, want past the first epoch (%d steps)", sum.ResumedFrom, stepsPerEpoch)
	}
	data, err := os.ReadFile(cfg.Summary)
	if err != nil {
		t.Fatalf("no summary: %v", err)
	}
	var got struct {
		Status       string           `json:"status"`
		Epochs       []map[string]any `json:"epoch_metrics"`
		TestAccuracy *float64         `json:"test_accuracy"`
		Checkpoints  []string         `json:"checkpoints"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusCompleted || got.TestAccuracy == nil || *got.TestAccuracy < 0.8 || len(got.Epochs) != 3 {
		t.Fatalf("summary %s: want a completed job of 3 epochs and its accuracy", data)
	}
	t.Logf("resumed from step %d, test accuracy %.3f", sum.ResumedFrom, *got.TestAccuracy)
	for i, e := range got.Epochs {
		for _, k := range []string{"train_loss", "test_loss", "test_accuracy"} {
			if _, ok := e[k]; !ok {
				t.Fatalf("epoch %d of the resumed job's summary has no %s: %v", i+1, k, e)
			}
		}
	}
	// The checkpoints written before the restart are listed too.
	if len(got.Checkpoints) == 0 || got.Checkpoints[0] != filepath.Join(cfg.CheckpointDir, "ckpt-000000000020.ckpt") {
		t.Fatalf("checkpoints %v: want the job's from step 20 on", got.Checkpoints)
	}
}

// TestRestartAfterCompletion starts a coordinator again on the checkpoint
// folder of a job that completed (as when it is killed after its last
// step, before it exits): it writes the outputs from the last checkpoint
// instead of failing, and releases a worker that comes back to it.
func TestRestartAfterCompletion(t *testing.T) {
	t.Parallel() // its job mostly waits on gRPC, gossip and the other goroutines
	dir := t.TempDir()
	cfg := testConfig(t, 2)
	cfg.MaxSteps, cfg.CheckpointDir, cfg.Summary = 40, filepath.Join(dir, "ckpt"), filepath.Join(dir, "summary.json")
	first, err, werrs := runJob(t, cfg, workerIDs(2)...)
	if err != nil || werrs[0] != nil || werrs[1] != nil {
		t.Fatalf("first run: %v, workers %v", err, werrs)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	second := cfg
	// The worker dials before the coordinator serves, so it joins at once:
	// the default grace, for workers that wait between retries, would
	// only lengthen the test.
	second.Listener, second.CompleteGrace = lis, 2*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	werr := make(chan error, 1)
	go func() {
		werr <- worker.Run(ctx, testWorker(lis.Addr().String(), "w-0"))
	}()
	sum, err := Run(ctx, second)
	if err != nil {
		t.Fatalf("restarted on a complete job: %v", err)
	}
	if sum.Status != StatusCompleted || sum.WeightsSHA256 != first.WeightsSHA256 || sum.StepsDone != 40 {
		t.Fatalf("restarted: %s, %d steps, weights %s; want the completed job's %s", sum.Status, sum.StepsDone, sum.WeightsSHA256, first.WeightsSHA256)
	}
	if err := <-werr; err != nil {
		t.Fatalf("the worker that came back: %v, want it released", err)
	}
}
