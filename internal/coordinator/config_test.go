package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestConfigPartsValidate: the parts' defaults are valid (the cluster once
// it has workers), each part's Validate refuses its own bad fields, and
// Config.Validate refuses what only the parts together make wrong.
func TestConfigPartsValidate(t *testing.T) {
	cluster := DefaultCluster()
	cluster.Workers = 2
	for name, err := range map[string]error{"job": DefaultJob().Validate(), "cluster": cluster.Validate(),
		"outputs": DefaultOutputs().Validate()} {
		if err != nil {
			t.Errorf("the default %s: %v", name, err)
		}
	}
	if err := DefaultCluster().Validate(); err == nil || !strings.Contains(err.Error(), "no workers") {
		t.Errorf("a cluster without workers: %v", err)
	}
	if d := DefaultCluster(); d.CompleteGrace != DefaultCompleteGrace || d.MinWorkers != 1 || d.JoinTimeout != time.Minute {
		t.Errorf("DefaultCluster() = %+v", d)
	}
	job := DefaultJob()
	job.Model.Layers = nil
	if err := job.Validate(); err == nil || !strings.Contains(err.Error(), "no layers") {
		t.Errorf("a job without a model: %v", err)
	}
	cluster.CompleteGrace = -time.Second
	if err := cluster.Validate(); err == nil || !strings.Contains(err.Error(), "grace") {
		t.Errorf("a negative grace: %v", err)
	}
	outputs := DefaultOutputs()
	outputs.CheckpointKeep = 0
	if err := outputs.Validate(); err == nil || !strings.Contains(err.Error(), "count kept 0") {
		t.Errorf("no checkpoints kept: %v", err)
	}
	// 3 workers at batch 32: the default micro-batch of a global batch of
	// 96 is 4, which divides 32; 5 does not.
	cfg := DefaultConfig()
	cfg.Workers, cfg.Deterministic = 3, true
	if err := cfg.Validate(); err != nil {
		t.Errorf("deterministic on 3 workers: %v", err)
	}
	cfg.MicroBatch = 5
	if err := cfg.Job.Validate(); err != nil {
		t.Errorf("the job alone: %v", err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "micro-batch of 5 samples does not divide the per-worker batch of 32") {
		t.Errorf("a micro-batch that does not divide the batch: %v", err)
	}
}

// TestRunNeedsItsInputs: a job without data, or of local workers without
// a launcher, is refused before it listens, naming what is missing.
func TestRunNeedsItsInputs(t *testing.T) {
	cfg := testConfig(t, 1)
	cfg.Data = nil
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no data to train on (Config.Data)") {
		t.Errorf("without data: %v", err)
	}
	cfg = testConfig(t, 0)
	cfg.LocalWorkers = 1
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no launcher for the local workers (Config.Launcher)") {
		t.Errorf("without a launcher: %v", err)
	}
}
