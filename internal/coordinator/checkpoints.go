package coordinator

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"ringtrain/internal/nn"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// Checkpoints in CheckpointDir are named by the step they hold, so that
// names sort in step order.
const checkpointPattern = "ckpt-%012d.ckpt"

// saveCheckpoint writes st to the checkpoint folder (atomically: a
// temporary file, fsync, rename) with the job's history up to it beside
// it, and removes all but the newest CheckpointKeep checkpoints.
func (c *coordinator) saveCheckpoint(st *wire.State, h *history) (string, error) {
	ck := &nn.Checkpoint{Spec: c.spec, Seed: c.job.Seed, Epoch: uint64(st.Header.Step / c.job.StepsPerEpoch),
		Step: st.Header.Step, Params: st.Params, Optimizer: st.Opt}
	if _, err := ck.Model(); err != nil {
		return "", fmt.Errorf("coordinator: checkpoint at step %d does not fit the model: %w", st.Header.Step, err)
	}
	path := filepath.Join(c.cfg.CheckpointDir, fmt.Sprintf(checkpointPattern, st.Header.Step))
	// The history goes first: a checkpoint on disk always has its own
	// (a coordinator killed between the two leaves a history without a
	// checkpoint, which the next save of that step replaces).
	h.Checkpoints = append(slices.Clone(h.Checkpoints), path)
	if err := saveHistory(path, h); err != nil {
		return "", err
	}
	if err := nn.SaveCheckpoint(path, ck); err != nil {
		return "", err
	}
	names, err := checkpointFiles(c.cfg.CheckpointDir)
	if err != nil {
		return "", err
	}
	for len(names) > c.cfg.CheckpointKeep {
		if err := os.Remove(names[0]); err != nil {
			return "", fmt.Errorf("coordinator: prune checkpoints: %w", err)
		}
		if err := os.Remove(historyPath(names[0])); err != nil && !os.IsNotExist(err) {
			return "", fmt.Errorf("coordinator: prune checkpoints: %w", err)
		}
		names = names[1:]
	}
	c.log.Info("checkpoint written", "path", path, "step", st.Header.Step)
	return path, nil
}

// checkpointFiles lists the checkpoints in dir, oldest first.
func checkpointFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("coordinator: checkpoint folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		var step uint64
		if n, _ := fmt.Sscanf(e.Name(), checkpointPattern, &step); n == 1 && strings.HasSuffix(e.Name(), ".ckpt") {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(names)
	return names, nil
}

// resumeCheckpoint loads the newest valid checkpoint in dir, skipping (with
// a warning) any that is corrupt, and returns it with its path. It returns
// nil when there is none.
func resumeCheckpoint(dir string, log *slog.Logger) (*nn.Checkpoint, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("coordinator: checkpoint folder: %w", err)
	}
	names, err := checkpointFiles(dir)
	if err != nil {
		return nil, "", err
	}
	for i := len(names) - 1; i >= 0; i-- {
		ck, err := nn.LoadCheckpoint(names[i])
		if err != nil {
			log.Warn("skipping a corrupt checkpoint", "path", names[i], "err", err)
			continue
		}
		log.Info("resuming from checkpoint", "path", names[i], "step", ck.Step)
		return ck, names[i], nil
	}
	return nil, "", nil
}

// checkpointState turns a checkpoint into the state a ring starts from.
func checkpointState(ck *nn.Checkpoint, jobID string) *wire.State {
	return &wire.State{Header: &pb.StateHeader{JobId: jobID, Step: ck.Step}, Params: ck.Params, Opt: ck.Optimizer}
}
