package cli

import (
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
)

// loadTrained loads the checkpoint at path and its model, and the MNIST
// sets of splits from dataDir (the GoMNIST module's when empty), each
// checked against the model's input.
func loadTrained(path, dataDir string, splits ...mnist.Split) (*nn.Checkpoint, *nn.Model, []*mnist.Set, error) {
	ck, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := ck.Model()
	if err != nil {
		return nil, nil, nil, err
	}
	if dataDir == "" {
		if dataDir, err = mnist.DefaultDir(); err != nil {
			return nil, nil, nil, err
		}
	}
	sets := make([]*mnist.Set, len(splits))
	for i, split := range splits {
		if sets[i], err = mnist.Load(dataDir, split); err != nil {
			return nil, nil, nil, err
		}
		if err := m.CheckDataset(sets[i]); err != nil {
			return nil, nil, nil, err
		}
	}
	return ck, m, sets, nil
}
