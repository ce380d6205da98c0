package coordinator

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"ringtrain/internal/nn"
)

// removeOnFirstWrite removes a folder when the job's first progress line
// comes, after the checks at the start passed.
type removeOnFirstWrite struct {
	once sync.Once
	dir  string
}

func (r *removeOnFirstWrite) Write(b []byte) (int, error) {
	r.once.Do(func() { os.RemoveAll(r.dir) })
	return len(b), nil
}

// TestFailedFinalSaveRescuesTheModel: when the checkpoint's folder vanishes
// during training, the trained model is written to the checkpoint folder
// instead, and the error says where.
func TestFailedFinalSaveRescuesTheModel(t *testing.T) {
	t.Parallel() // its job mostly waits on gRPC, gossip and the other goroutines
	const steps = 20
	cfg := testConfig(t, 2)
	gone := t.TempDir()
	cfg.Checkpoint = filepath.Join(gone, "model.ckpt")
	cfg.CheckpointDir = t.TempDir()
	cfg.MaxSteps = steps
	cfg.Progress = &removeOnFirstWrite{dir: gone}
	_, err, _ := runJob(t, cfg, workerIDs(2)...)
	if err == nil || !strings.Contains(err.Error(), "could not be written to "+cfg.Checkpoint) {
		t.Fatalf("job: %v, want the failed save named", err)
	}
	_, after, ok := strings.Cut(err.Error(), "it is saved in ")
	rescued, _, _ := strings.Cut(after, " instead")
	if !ok || filepath.Dir(rescued) != cfg.CheckpointDir {
		t.Fatalf("job: %v, want the model saved in %s", err, cfg.CheckpointDir)
	}
	ck, err := nn.LoadCheckpoint(rescued)
	if err != nil || ck.Step != steps {
		t.Fatalf("rescued checkpoint: %v (step %v), want step %d", err, ck, steps)
	}
}
