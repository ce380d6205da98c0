package coordinator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"ringtrain/internal/nn"
	"ringtrain/internal/wire"
)

// rescueDirs are where an output that cannot be written where asked goes
// instead, in order: the checkpoint folder, the working folder, the
// temporary folder.
func (c *coordinator) rescueDirs() []string {
	var dirs []string
	if c.cfg.CheckpointDir != "" {
		dirs = append(dirs, c.cfg.CheckpointDir)
	}
	dirs = append(dirs, ".", os.TempDir())
	return slices.Compact(dirs)
}

// writeOrRescue writes the output named what to path with write. When that
// fails it writes it to rescueName in the first rescue folder that takes
// it, and returns that path with an error that names both; it returns ""
// when no folder took it.
func (c *coordinator) writeOrRescue(what, path, rescueName string, write func(path string) error) (string, error) {
	err := write(path)
	if err == nil {
		return path, nil
	}
	for _, dir := range c.rescueDirs() {
		p := filepath.Join(dir, rescueName)
		if _, statErr := os.Stat(p); statErr == nil || p == path {
			continue // never replace a file, nor retry the failed path
		}
		if write(p) == nil {
			c.log.Error("output rescued", "output", what, "asked", path, "written", p, "err", err)
			return p, fmt.Errorf("coordinator: %s could not be written to %s (%w); it is saved in %s instead", what, path, err, p)
		}
	}
	return "", fmt.Errorf("coordinator: %s could not be written to %s, nor to %v: %w", what, path, c.rescueDirs(), err)
}

// saveOutputs writes the final checkpoint, the trace and the plot where
// configured, then the summary. A checkpoint that cannot be written where
// asked is written to a rescue folder (the error says where); the other
// outputs still go out, and the first error is returned.
func (c *coordinator) saveOutputs(sum *Summary, final *wire.State, s *supervisor) error {
	var errs []error
	if path := c.cfg.Checkpoint; path != "" {
		ck := &nn.Checkpoint{Spec: c.spec, Seed: c.job.Seed, Epoch: uint64(sum.Epochs), Step: final.Header.Step,
			Params: final.Params, Optimizer: final.Opt}
		if _, err := ck.Model(); err != nil {
			return fmt.Errorf("coordinator: final state does not fit the model: %w", err)
		}
		saved, err := c.writeOrRescue("the final checkpoint", path, "ringtrain-"+c.job.JobId+".ckpt",
			func(p string) error { return nn.SaveCheckpoint(p, ck) })
		sum.Checkpoint = saved
		errs = append(errs, err)
	}
	if path := c.cfg.Trace; path != "" {
		errs = append(errs, c.writeTrace(path, s))
	}
	if path := c.cfg.Plot; path != "" {
		errs = append(errs, plotTraining(path, sum, s.rep.losses))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.writeSummary(sum)
}
