package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/coordinator"
	"ringtrain/internal/nn"
)

// TestFinalLineNamesEveryFile: the coordinator's last line names every file
// the run wrote, the trace and the plot included, and counts in English.
func TestFinalLineNamesEveryFile(t *testing.T) {
	cfg := coordinator.DefaultConfig()
	cfg.Trace, cfg.Plot, cfg.CheckpointDir = "trace.json", "curve.png", "ckpt"
	sum := &coordinator.Summary{Workers: 1, Steps: 300, GlobalBatch: 32, Checkpoint: "ringtrain.ckpt",
		Record: coordinator.Record{Checkpoints: []string{"ckpt/a", "ckpt/b", "ckpt/c", "ckpt/d"}}}
	line := finalLine(sum, cfg)
	for _, want := range []string{"on 1 worker (", "ringtrain.ckpt (model)", "ringtrain-summary.json (summary)",
		"trace.json (trace)", "curve.png (plot)", "3 checkpoints kept in ckpt"} {
		if !strings.Contains(line, want) {
			t.Errorf("final line %q lacks %q", line, want)
		}
	}
	cfg.Summary, cfg.Trace, cfg.Plot, cfg.CheckpointDir = "", "", "", ""
	sum.Workers, sum.Checkpoint, sum.Checkpoints = 4, "", nil
	if line := finalLine(sum, cfg); !strings.Contains(line, "on 4 workers") || !strings.HasSuffix(line, "wrote no files") {
		t.Errorf("final line %q", line)
	}
}

// TestWorkerErrorLineSaysItOnce: the worker's last line does not repeat its
// prefix or its name ("worker: worker vm-1: worker: ...").
func TestWorkerErrorLineSaysItOnce(t *testing.T) {
	for _, msg := range []string{"worker: worker vm-1: the coordinator stopped the job: x", "worker: the coordinator stopped the job: x"} {
		if got := errorLine(errors.New(msg), "vm-1"); got != "the coordinator stopped the job: x" {
			t.Errorf("%q printed as %q", msg, got)
		}
	}
}

// TestFlagsFillConfig: the coordinator's flags fill the parts of its
// configuration and the places its inputs come from, and the composed job
// carries the model read from -model, named by it.
func TestFlagsFillConfig(t *testing.T) {
	model := filepath.Join(t.TempDir(), "model.json")
	spec := nn.KerasMNIST()
	spec.Layers[1].Units = 64
	if err := os.WriteFile(model, spec.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	j := newJobFlags()
	fs, _ := coordinatorFlags(j)
	if err := fs.Parse([]string{"-local-workers", "3", "-epochs", "2", "-checkpoint-dir", "ck", "-probe-timeout", "2s",
		"-model", model, "-data", "mnist", "-data-url", "http://x"}); err != nil {
		t.Fatal(err)
	}
	if j.cfg.LocalWorkers != 3 || j.cfg.Job.Epochs != 2 || j.cfg.Outputs.CheckpointDir != "ck" || j.cfg.Cluster.ProbeTimeout != 2*time.Second ||
		j.cfg.Batch != coordinator.DefaultJob().Batch {
		t.Errorf("config %+v", j.cfg)
	}
	if j.in.Model != model || j.in.DataDir != "mnist" || j.in.DataURL != "http://x" {
		t.Errorf("inputs %+v", j.in)
	}
	cfg, err := j.in.Job(j.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ModelName != model || cfg.Model.Layers[1].Units != 64 || cfg.Data == nil || cfg.Launcher == nil {
		t.Errorf("composed: model %q with %d units, data %v, launcher %v", cfg.ModelName, cfg.Model.Layers[1].Units, cfg.Data != nil, cfg.Launcher)
	}
}
