package coordinator

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
	"ringtrain/internal/rpc"
	pb "ringtrain/proto"
)

// Bytes is a size in bytes that reads and prints with binary units
// ("3GiB", "512MiB", "1.5G", "1048576").
type Bytes uint64

func (b Bytes) String() string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", uint64(b))
}

// Set parses a size: a number with an optional unit, K/KiB, M/MiB, G/GiB,
// T/TiB (all binary) or B.
func (b *Bytes) Set(s string) error {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "mb": 1 << 20,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tib": 1 << 40, "tb": 1 << 40}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || v < 0 || v*mult >= 1<<63 {
		return fmt.Errorf("size %q: want a number of bytes, with K, M, G or T (binary units) if you like", prefix(s))
	}
	*b = Bytes(v * mult)
	return nil
}

// systemMemory is the memory this process may use: the machine's, or its
// cgroup's limit when that is lower; 0 when neither can be read (not
// Linux). from says where the figure comes from.
func systemMemory() (limit Bytes, from string) {
	if kb, ok := meminfoTotal(); ok {
		limit, from = Bytes(kb)<<10, "the machine's memory (/proc/meminfo)"
	}
	for _, f := range cgroupLimitFiles() {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || v == 0 {
			continue // "max": no limit
		}
		if limit == 0 || Bytes(v) < limit {
			limit, from = Bytes(v), "the cgroup's limit ("+f+")"
		}
	}
	return limit, from
}

func meminfoTotal() (kb uint64, ok bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, found := strings.CutPrefix(sc.Text(), "MemTotal:"); found {
			v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// cgroupLimitFiles lists the files that may hold this process's memory
// limit: cgroup v2's memory.max and v1's memory.limit_in_bytes, at the
// process's own cgroup and at the root of the hierarchy.
func cgroupLimitFiles() []string {
	files := []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return files
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			files = append(files, filepath.Join("/sys/fs/cgroup", parts[2], "memory.max"))
		case strings.Contains(","+parts[1]+",", ",memory,"):
			files = append(files, filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
		}
	}
	return files
}

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
	limit    Bytes
	from     string
	need     Bytes
	evalRows int
}

// planMemory estimates the memory of the job on this machine before the
// first step (the coordinator's data, states and evaluations, and the
// training of its local workers) and picks the evaluation's chunk so that
// it fits. It refuses, with the figures, a job that does not fit even so.
// Remote workers' machines are their own: only the coordinator's part
// counts for them.
func planMemory(cfg Config, spec nn.Spec, train, test *mnist.Set, numParams, numSlots int) (memoryPlan, error) {
	f, err := nn.EstimateFootprint(spec)
	if err != nil {
		return memoryPlan{}, fmt.Errorf("coordinator: %w", err)
	}
	p := memoryPlan{limit: cfg.MemoryLimit, from: "-memory-limit"}
	if p.limit == 0 {
		p.limit, p.from = systemMemory()
	}
	state := Bytes(8 * numParams * (1 + numSlots))
	// The data sets with their sparse index, the initial, newest, final
	// and ring-starting states and a checkpoint's encoding.
	data := Bytes(3 * (len(train.Pixels) + len(test.Pixels) + train.Count + test.Count))
	coord := data + 5*state
	var workers Bytes
	what := "the coordinator's data, states and evaluation"
	if n := cfg.LocalWorkers; n > 0 {
		global := n * cfg.Batch
		// Each worker: its model, a backup of its state, the all-reduce's
		// buffers; between them the whole training set and the global
		// batch's activations, however the lanes are dealt.
		workers = Bytes(uint64(n)*(f.Training(0)+uint64(state)+16*uint64(numParams))) + Bytes(uint64(global)*f.TrainSample) + data/3
		what = fmt.Sprintf("%d local workers training on a global batch of %d (%s of activations), and the coordinator's data, states and evaluation",
			n, global, Bytes(uint64(global)*f.TrainSample))
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
	p.need = fixed + Bytes(f.Evaluation(max(rows, 1)))
	if p.limit > 0 && rows < 1 {
		return p, fmt.Errorf("coordinator: the model (%s) needs about %s of memory for %s (%s of it to evaluate one sample), more than the limit of %s, %s; "+
			"use a smaller model or batch, fewer local workers, or raise -memory-limit",
			spec.Summary(), p.need, what, Bytes(f.Evaluation(1)), p.limit, p.from)
	}
	return p, nil
}

// evaluateInChunks is m.Evaluate(set) with at most rows samples at a time,
// so that a deep model's activations fit the memory bound; the mean loss
// and the accuracy are the same (up to rounding).
func evaluateInChunks(m *nn.Model, set *mnist.Set, rows int) (loss, acc float64) {
	if rows <= 0 || rows >= evalRowsMax || rows >= set.Count {
		return m.Evaluate(set)
	}
	var lossSum, correct float64
	ids := make([]int, 0, rows)
	for lo := 0; lo < set.Count; lo += rows {
		ids = ids[:0]
		for i := lo; i < min(lo+rows, set.Count); i++ {
			ids = append(ids, i)
		}
		l, a := m.Evaluate(set.Subset(ids))
		lossSum += l * float64(len(ids))
		correct += a * float64(len(ids))
	}
	return lossSum / float64(set.Count), correct / float64(set.Count)
}

// checkMessageSizes refuses a job whose messages would exceed gRPC's cap:
// the assignment, which carries the model description to every worker
// with the ring's ids and addresses, and the all-reduce's frames.
func checkMessageSizes(job *pb.JobSpec, maxWorkers int) error {
	limit := Bytes(rpc.MaxMessageBytes)
	a := &pb.Instruction{Kind: &pb.Instruction_Assignment{Assignment: &pb.Assignment{Job: job}}}
	size := Bytes(proto.Size(a) + maxWorkers*(maxWorkerID+maxRingAddr+8) + 1024)
	if size > limit {
		return fmt.Errorf("coordinator: the model description is %s as JSON; every worker receives it in one message, with the ring's ids and addresses (%s in all), "+
			"and gRPC messages are capped at %s: the model is too large to send (it has %d layers)", Bytes(len(job.ModelJson)), size, limit, strings.Count(job.ModelJson, `"type":`))
	}
	const frameOverhead = 1024 // the frame's other fields
	if seg := Bytes(job.SegmentBytes); seg+frameOverhead > limit {
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
