package cli

import (
	"math"
	"path/filepath"
	"testing"

	"ringtrain/internal/mnist"
	"ringtrain/internal/mnist/mnisttest"
	"ringtrain/internal/nn"
)

// TestPruneCommand trains the Keras example briefly, prunes it to 60% with
// one epoch of fine-tuning, and checks the saved model: 60% of its kernel
// weights are zero, its description keeps the pruning, and fine-tuning
// recovered accuracy the pruning lost. Training, fine-tuning and testing
// use the first 3,000 training and 500 test images.
func TestPruneCommand(t *testing.T) {
	if _, err := mnist.DefaultDir(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	if err := mnisttest.WriteSubset(dir, 3000, 500); err != nil {
		t.Fatal(err)
	}
	train, err := mnist.Load(dir, mnist.Train)
	if err != nil {
		t.Fatal(err)
	}
	test, err := mnist.Load(dir, mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.New(nn.KerasMNIST())
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(1)
	if _, err := m.Fit(train, nn.FitConfig{Epochs: 1}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "trained.ckpt")
	if err := nn.SaveCheckpoint(in, m.Checkpoint(1, m.Optimizer().Iterations())); err != nil {
		t.Fatal(err)
	}
	_, trainedAcc := m.Evaluate(test)
	m.Prune(0.6)
	_, prunedAcc := m.Evaluate(test)
	if code := Prune([]string{"-checkpoint", in, "-sparsity", "0.6", "-epochs", "1", "-data", dir}); code != 0 {
		t.Fatalf("prune exited with %d", code)
	}
	ck, err := nn.LoadCheckpoint(filepath.Join(filepath.Dir(in), "trained.pruned.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := ck.Model()
	if err != nil {
		t.Fatal(err)
	}
	_, tunedAcc := out.Evaluate(test)
	t.Logf("accuracy trained %.4f, pruned %.4f, fine-tuned %.4f; sparsity %.4f", trainedAcc, prunedAcc, tunedAcc, out.Sparsity())
	if math.Abs(out.Sparsity()-0.6) > 0.001 || out.Spec().Pruning == nil || out.Spec().Pruning.Sparsity != 0.6 {
		t.Fatalf("saved model: sparsity %v, pruning %+v", out.Sparsity(), out.Spec().Pruning)
	}
	if tunedAcc <= prunedAcc {
		t.Fatalf("fine-tuning did not help: %.4f after pruning, %.4f after fine-tuning", prunedAcc, tunedAcc)
	}
}
