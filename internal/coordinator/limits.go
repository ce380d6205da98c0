package coordinator

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"ringtrain/internal/grpcopts"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
	"ringtrain/internal/sysmem"
	pb "ringtrain/proto"
)

// evalRowsMax is the most samples the coordinator evaluates at a time
// (nn.Model.Evaluate's own chunk); evalShare bounds the activations of an
// evaluation to that share of the memory limit.
const (
	evalRowsMax = 1000
	evalShare   = 4
)

// memoryPlan is what the memory check found: the limit, the estimate, and
// how many test samples an evaluation may take at a time.
type memoryPlan struct {
	limit    sysmem.Bytes
	from     string
	need     sysmem.Bytes
	evalRows int
}

// planMemory estimates the memory of the job on this machine before the
// first step (the coordinator's data, states and evaluations, and the
// training of its local workers) and picks the evaluation's chunk so that
// it fits. It refuses, with the figures, a job that does not fit even so.
// Remote workers' machines are their own: each worker checks its
// assignment against its own limit (worker.checkMemory).
func planMemory(cfg Config, spec nn.Spec, train, test *mnist.Set, numParams, numSlots int) (memoryPlan, error) {
	f, err := nn.EstimateFootprint(spec)
	if err != nil {
		return memoryPlan{}, fmt.Errorf("coordinator: %w", err)
	}
	p := memoryPlan{limit: cfg.MemoryLimit, from: "-memory-limit"}
	if p.limit == 0 {
		p.limit, p.from = sysmem.Limit()
	}
	state := sysmem.Bytes(8 * numParams * (1 + numSlots))
	// The data sets with their sparse index, the initial, newest, final
	// and ring-starting states and a checkpoint's encoding.
	data := sysmem.Bytes(3 * (len(train.Pixels) + len(test.Pixels) + train.Count + test.Count))
	coord := data + 5*state
	var workers sysmem.Bytes
	what := "the coordinator's data, states and evaluation"
	if n := cfg.LocalWorkers; n > 0 {
		global := n * cfg.Batch
		// Each worker: its model, a backup of its state and the
		// all-reduce's buffers (nn.Footprint.Worker, which the workers'
		// own check counts too); between them the whole training set and
		// the global batch's activations, however the lanes are dealt.
		workers = sysmem.Bytes(uint64(n)*f.Worker(0)) + sysmem.Bytes(uint64(global)*f.TrainSample) + data/3
		what = fmt.Sprintf("%d local workers training on a global batch of %d (%s of activations), and the coordinator's data, states and evaluation",
			n, global, sysmem.Bytes(uint64(global)*f.TrainSample))
	}
	fixed := coord + workers
	rows := evalRowsMax
	if p.limit > 0 && f.EvalSample > 0 {
		// What is left, and at most a quarter of the limit unless one
		// sample needs more: chunks of a few dozen samples evaluate as
		// fast, and leave the machine alone.
		room := (int64(p.limit) - int64(fixed) - int64(f.Evaluation(0))) / int64(f.EvalSample)
		share := max(1, int64(p.limit/evalShare)/int64(f.EvalSample))
		rows = int(min(int64(evalRowsMax), room, share))
	}
	p.evalRows = rows
	p.need = fixed + sysmem.Bytes(f.Evaluation(max(rows, 1)))
	if p.limit > 0 && rows < 1 {
		return p, fmt.Errorf("coordinator: the model (%s) needs about %s of memory for %s (%s of it to evaluate one sample), more than the limit of %s, %s; "+
			"use a smaller model or batch, fewer local workers, or raise -memory-limit",
			spec.Summary(), p.need, what, sysmem.Bytes(f.Evaluation(1)), p.limit, p.from)
	}
	return p, nil
}

// evaluateInChunks is m.Evaluate(set) with at most rows samples at a time,
// so that a deep model's activations fit the memory bound; the mean loss
// and the accuracy are the same (up to rounding).
func evaluateInChunks(m *nn.Model, set *mnist.Set, rows int) (loss, acc float64) {
	return m.EvaluateRange(set, 0, set.Count, max(rows, 1))
}

// checkMessageSizes refuses a job whose messages would exceed gRPC's cap:
// the assignment, which carries the model description to every worker
// with the ring's ids and addresses, and the all-reduce's frames.
func checkMessageSizes(job *pb.JobSpec, maxWorkers int, modelName string) error {
	limit := sysmem.Bytes(grpcopts.MaxMessageBytes)
	a := &pb.Instruction{Kind: &pb.Instruction_Assignment{Assignment: &pb.Assignment{Job: job}}}
	size := sysmem.Bytes(proto.Size(a) + maxWorkers*(maxWorkerID+maxRingAddr+8) + 1024)
	if size > limit {
		return fmt.Errorf("coordinator: the model description%s is %s as JSON; every worker receives it in one message, with the ring's ids and addresses (%s in all), "+
			"and gRPC messages are capped at %s: the model is too large to send (it has %d layers)",
			modelName, sysmem.Bytes(len(job.ModelJson)), size, limit, strings.Count(job.ModelJson, `"type":`))
	}
	const frameOverhead = 1024 // the frame's other fields
	if seg := sysmem.Bytes(job.SegmentBytes); seg+frameOverhead > limit {
		return fmt.Errorf("coordinator: -segment-bytes %d: an all-reduce frame would exceed gRPC's cap of %s; at most %d", job.SegmentBytes, limit, limit-frameOverhead)
	}
	return nil
}

// Bounds of a Join request's strings.
const (
	maxWorkerID = 253
	maxRingAddr = 512
	maxHostname = 253
)
