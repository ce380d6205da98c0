package cli

import (
	"errors"
	"strings"
	"testing"

	"ringtrain/internal/coordinator"
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
