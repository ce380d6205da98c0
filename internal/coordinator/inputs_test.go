package coordinator

import (
	"context"
	"fmt"
	"testing"

	"ringtrain/internal/mnist"
	"ringtrain/internal/modelfile"
)

// dataIn loads the training and test sets in dir, as the command line's
// loader does with -data.
func dataIn(dir string) func(context.Context) (train, test *mnist.Set, err error) {
	return func(context.Context) (*mnist.Set, *mnist.Set, error) {
		train, err := mnist.Load(dir, mnist.Train)
		if err != nil {
			return nil, nil, err
		}
		test, err := mnist.Load(dir, mnist.Test)
		return train, test, err
	}
}

// setModel gives cfg the model description at path, named by it.
func setModel(t *testing.T, cfg *Config, path string) {
	t.Helper()
	spec, err := modelfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Model, cfg.ModelName = spec, path
}

// fakeLauncher starts no process: it calls launched with what it was asked
// to start and names the workers local-0, local-1, ...
type fakeLauncher func(LocalWorkers)

func (f fakeLauncher) Launch(w LocalWorkers, _ func(LocalExit)) ([]string, func(), error) {
	f(w)
	names := make([]string, w.Count)
	for i := range names {
		names[i] = fmt.Sprintf("local-%d", i)
	}
	return names, func() {}, nil
}
