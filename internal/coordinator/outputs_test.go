package coordinator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOutputsCheckedBeforeTraining: every output location is checked before
// the job waits for a worker or loads data: a missing folder, a folder
// where a file should go, two outputs on one path and an earlier run's file
// each fail at once, naming the flag and the path.
func TestOutputsCheckedBeforeTraining(t *testing.T) {
	dir := t.TempDir()
	earlier := filepath.Join(dir, "earlier.json")
	if err := os.WriteFile(earlier, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nonexistent", "out")
	for name, tc := range map[string]struct {
		adjust func(*Config)
		want   string
	}{
		"checkpoint folder": {func(c *Config) { c.Checkpoint = missing }, "-checkpoint " + missing + ": the folder " + filepath.Dir(missing) + " does not exist"},
		"summary folder":    {func(c *Config) { c.Summary = missing }, "-summary " + missing + ": the folder"},
		"trace folder":      {func(c *Config) { c.Trace = missing }, "-trace " + missing + ": the folder"},
		"plot folder":       {func(c *Config) { c.Plot = missing }, "-plot " + missing + ": the folder"},
		"plot is a folder":  {func(c *Config) { c.Plot = dir }, "-plot " + dir + " is a folder"},
		"checkpoint-dir":    {func(c *Config) { c.CheckpointDir = filepath.Join(file, "ckpt") }, "-checkpoint-dir " + filepath.Join(file, "ckpt")},
		"same path":         {func(c *Config) { c.Trace, c.Plot = filepath.Join(dir, "x"), filepath.Join(dir, "x") }, "-trace and -plot both name"},
		"earlier run":       {func(c *Config) { c.Summary = earlier }, "an earlier run's files are where this one writes: -summary " + earlier + " (written"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, 2) // nobody joins: a late check would wait out the join timeout
			tc.adjust(&cfg)
			start := time.Now()
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the check came after %v", took)
			}
		})
	}
	data, err := os.ReadFile(earlier)
	if err != nil || string(data) != "{}\n" {
		t.Errorf("the earlier run's file changed: %q, %v", data, err)
	}
}

// TestOverwriteReplacesEarlierOutputs: with Overwrite an earlier run's
// files pass the check; without it the error says how to replace them.
func TestOverwriteReplacesEarlierOutputs(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Outputs: Outputs{Checkpoint: filepath.Join(dir, "a.ckpt"), Summary: filepath.Join(dir, "s.json")}}
	for _, p := range []string{cfg.Checkpoint, cfg.Summary} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.checkOutputs(); err == nil || !strings.Contains(err.Error(), "-checkpoint "+cfg.Checkpoint) ||
		!strings.Contains(err.Error(), "-summary "+cfg.Summary) || !strings.Contains(err.Error(), "give -overwrite to replace them") {
		t.Errorf("without Overwrite: %v, want both files named at once", err)
	}
	cfg.Overwrite = true
	if err := cfg.checkOutputs(); err != nil {
		t.Errorf("with Overwrite: %v", err)
	}
	// A job resuming from its checkpoints wrote these files itself in an
	// earlier attempt (a summary of its failure): it goes on.
	cfg.Overwrite, cfg.CheckpointDir = false, filepath.Join(dir, "ckpt")
	if err := os.Mkdir(cfg.CheckpointDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.CheckpointDir, fmt.Sprintf(checkpointPattern, 100)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cfg.checkOutputs(); err != nil {
		t.Errorf("resuming from %s: %v", cfg.CheckpointDir, err)
	}
}
