package bench

import (
	"context"
	"fmt"
	"os"

	"ringtrain/internal/netsim"
)

// netsimCompression (suite netsim-compression) trains the 784-512-512-10
// model on loopback and on every simulated link, at every all-reduce
// worker count, uncompressed and with each 16-bit gradient compression,
// netsimRounds times interleaved, and records the median run of each as
// suite netsim-compression, Impl ringtrain or ringtrain-fp16/-bf16: what
// compression saves in the all-reduce part of a step where the link, not
// the CPU, is the limit. Its records stay out of the cost model's fit.
func (r *runner) netsimCompression(ctx context.Context) error {
	if err := netsim.Check(); err != nil {
		r.logf("netsim-compression: skipped: %v", err)
		return r.add(Record{Suite: "netsim-compression", Note: "skipped: " + err.Error()})
	}
	if err := os.WriteFile(r.modelPath(mlp512), mlp512.spec().JSON(), 0o644); err != nil {
		return err
	}
	for _, n := range r.cfg.AllreduceWorkers {
		for _, c := range []string{"", "fp16", "bf16"} {
			tr := trainRun{model: mlp512, workers: n, perWorkerBatch: 32, steps: r.netsimSteps(mlp512), compression: c, suite: "netsim-compression"}
			if err := r.netsimTrainAll(ctx, tr); err != nil {
				return fmt.Errorf("compression %q: %w", c, err)
			}
		}
	}
	return nil
}
