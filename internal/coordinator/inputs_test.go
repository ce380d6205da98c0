package coordinator

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"ringtrain/internal/mnist"
	"ringtrain/internal/modelfile"
)

// testSets are testData's training and test sets, loaded once: the
// package's jobs share them (a job never writes its sets), instead of each
// loading them again as the command line's loader does with -data.
func testSets(context.Context) (train, test *mnist.Set, err error) {
	return loadedTestSets()
}

var loadedTestSets = func() func() (train, test *mnist.Set, err error) {
	var once sync.Once
	var train, test *mnist.Set
	var err error
	return func() (*mnist.Set, *mnist.Set, error) {
		once.Do(func() {
			var dir string
			if dir, err = testData(); err != nil {
				return
			}
			if train, err = mnist.Load(dir, mnist.Train); err == nil {
				test, err = mnist.Load(dir, mnist.Test)
			}
		})
		return train, test, err
	}
}()

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
