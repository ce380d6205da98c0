package worker

import (
	"fmt"

	"ringtrain/internal/nn"
	"ringtrain/internal/sysmem"
	pb "ringtrain/proto"
)

// checkMemory refuses an assignment this worker cannot train within its
// memory limit (Config.MemoryLimit, or the machine's): the model's
// estimated footprint (nn.EstimateFootprint) at the samples it computes
// each step, a backup of its state and the all-reduce's buffers, and its
// shard. The error gives the estimate and the limit; the coordinator loses
// the worker before the ring's first step rather than to the kernel.
func (w *worker) checkMemory(a *pb.Assignment) error {
	spec, err := nn.ParseSpec([]byte(a.Job.GetModelJson()))
	if err != nil {
		return nil // building the replica reports it
	}
	f, err := nn.EstimateFootprint(spec)
	if err != nil {
		return nil
	}
	limit, from := w.cfg.MemoryLimit, "-memory-limit"
	if limit == 0 {
		limit, from = sysmem.Limit()
	}
	features := uint64(1)
	for _, d := range spec.InputShape {
		features *= uint64(d)
	}
	rows := uint64(a.LaneCount)
	// The model, its backup and the all-reduce's buffers (f.Worker), and
	// the shard: its images (pixels, label, sparse index), one per lane
	// and step of an epoch.
	shard := rows * a.Job.GetStepsPerEpoch() * (3*features + 8)
	need := sysmem.Bytes(f.Worker(int(rows)) + shard)
	if limit > 0 && need > limit {
		return fmt.Errorf("worker %s: the model (%s) needs about %s of memory to train %d samples a step here (%s of activations), more than the limit of %s, %s; "+
			"use a smaller model or batch, more workers, or raise -memory-limit", w.cfg.ID, spec.Summary(), need, rows,
			sysmem.Bytes(rows*f.TrainSample), limit, from)
	}
	return nil
}
