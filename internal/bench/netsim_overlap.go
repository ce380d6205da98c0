package bench

import (
	"context"
	"fmt"
	"os"

	"ringtrain/internal/netsim"
	"ringtrain/internal/nn"
)

// cnnModel is the CNN of examples/cnn.json, with Adam's defaults: two
// 3×3 convolutions with pooling under Dense(128) and Dense(10).
var cnnModel = benchModel{name: "cnn", input: []int{28, 28, 1}, layers: []nn.LayerSpec{
	{Type: "conv2d", Filters: 32, KernelSize: nn.Pair{3, 3}, Activation: "relu"},
	{Type: "max_pooling2d", PoolSize: nn.Pair{2, 2}},
	{Type: "conv2d", Filters: 64, KernelSize: nn.Pair{3, 3}, Activation: "relu"},
	{Type: "max_pooling2d", PoolSize: nn.Pair{2, 2}},
	{Type: "flatten"},
	{Type: "dense", Units: 128, Activation: "relu"},
	{Type: "dense", Units: 10, Activation: "softmax"},
}}

// netsimOverlap (suite netsim-overlap) trains the Keras example, the
// 784-512-512-10 model and the CNN on loopback and on every simulated link, at every
// all-reduce worker count, without overlap (-bucket-bytes 0), with it
// (the default buckets) and with it and fp16 compression, netsimRounds
// times interleaved, and records the median run of each as suite
// netsim-overlap, Impl ringtrain-nooverlap, ringtrain or ringtrain-fp16.
// The cost model, which does not model overlap, is fitted on the loopback
// runs without overlap and checked against the shaped ones (netsim.md).
func (r *runner) netsimOverlap(ctx context.Context) error {
	if err := netsim.Check(); err != nil {
		r.logf("netsim-overlap: skipped: %v", err)
		return r.add(Record{Suite: "netsim-overlap", Note: "skipped: " + err.Error()})
	}
	models := []benchModel{kerasModel, mlp512, cnnModel}
	for _, m := range models {
		if err := os.WriteFile(r.modelPath(m), m.spec().JSON(), 0o644); err != nil {
			return err
		}
	}
	variants := []trainRun{{noOverlap: true}, {}, {compression: "fp16"}}
	for _, m := range models {
		for _, n := range r.cfg.AllreduceWorkers {
			for _, v := range variants {
				tr := trainRun{model: m, workers: n, perWorkerBatch: 32, steps: r.netsimSteps(m), compression: v.compression,
					noOverlap: v.noOverlap, suite: "netsim-overlap"}
				if err := r.netsimTrainAll(ctx, tr); err != nil {
					return fmt.Errorf("overlap %t, compression %q: %w", !v.noOverlap, v.compression, err)
				}
			}
		}
	}
	return r.netsimModel("netsim-overlap", "ringtrain-nooverlap")
}
