package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"ringtrain/internal/compose"
	"ringtrain/internal/coordinator"
	"ringtrain/internal/localworkers"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
	"ringtrain/internal/trainingdata"
)

// benchModel is a model the training suites run, with the hidden widths
// the PyTorch peer builds the same network from; a model with layers of
// its own (the CNN, which only the simulated-network suites run) has no
// peer.
type benchModel struct {
	name   string
	hidden []int
	// input and layers, when set, replace the dense stack.
	input  []int
	layers []nn.LayerSpec
}

var (
	kerasModel = benchModel{name: "keras", hidden: []int{10, 10}}
	// mlp1024 is compute-heavy: 1.9 million parameters.
	mlp1024 = benchModel{name: "mlp1024", hidden: []int{1024, 1024}}
)

func (m benchModel) spec() nn.Spec {
	s := nn.KerasMNIST()
	if m.layers != nil {
		s.InputShape, s.Layers = m.input, m.layers
		return s
	}
	s.Layers = nil
	for _, h := range m.hidden {
		s.Layers = append(s.Layers, nn.LayerSpec{Type: "dense", Units: h, Activation: "relu"})
	}
	s.Layers = append(s.Layers, nn.LayerSpec{Type: "dense", Units: 10, Activation: "softmax"})
	return s
}

func (m benchModel) hiddenFlag() string { return joinInts(m.hidden) }

// peerModel is how bench/torch_ddp.py is told to train m: the CNN by name
// (its cnn() is the same model), a dense stack by its widths.
func (m benchModel) peerModel() []string {
	if m.name == cnnModel.name {
		return []string{"--model", "cnn"}
	}
	return []string{"--hidden", m.hiddenFlag()}
}

// prepare finds the data for the peer and writes the model descriptions.
func (r *runner) prepare() error {
	dir, err := mnist.DefaultDir()
	if err != nil {
		return err
	}
	r.dataDir = dir
	for _, m := range []benchModel{kerasModel, mlp1024} {
		if err := os.WriteFile(r.modelPath(m), m.spec().JSON(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) modelPath(m benchModel) string { return filepath.Join(r.cfg.Out, m.name+".json") }

// trainSteps is how many steps a weak- or strong-scaling run takes: a few
// seconds of work for one worker.
func (r *runner) trainSteps(m benchModel, perWorker int) int {
	if r.cfg.Quick {
		return 5
	}
	if m.name == kerasModel.name {
		return max(100, 12800/perWorker)
	}
	return max(6, 1280/perWorker)
}

// trainRun is one training run of a suite.
type trainRun struct {
	model          benchModel
	workers        int
	perWorkerBatch int
	steps, epochs  int
	scaleLR        bool
	// compression is the job's -compression ("": none); suite, when
	// set, the suite of a simulated-network run's record.
	compression, suite string
	// noOverlap sets the job's -bucket-bytes to 0: one all-reduce after
	// the backward pass instead of buckets overlapping it.
	noOverlap bool
	// tcpOnly keeps the workers' frames on loopback TCP
	// (-shared-memory=false), the path they take over a simulated link.
	tcpOnly bool
}

// bucketBytes is the run's gradient bucket size.
func (tr trainRun) bucketBytes() int {
	if tr.noOverlap {
		return 0
	}
	return coordinator.DefaultBucketBytes
}

// ringtrain runs a job with local worker processes.
func (r *runner) ringtrain(ctx context.Context, tr trainRun) (*coordinator.Summary, error) {
	cfg := coordinator.DefaultConfig()
	cfg.LocalWorkers, cfg.Batch, cfg.MaxSteps = tr.workers, tr.perWorkerBatch, tr.steps
	cfg.Epochs = max(tr.epochs, 1)
	if tr.steps > 0 {
		cfg.Epochs = 1 << 20 // -max-steps decides
	}
	cfg.ScaleLR, cfg.WarmupEpochs = tr.scaleLR, 1
	cfg.Compression = tr.compression
	if tr.noOverlap {
		// Local workers overlap nothing by default (AutoBucketBytes).
		cfg.BucketBytes = 0
	}
	cfg.Checkpoint, cfg.Summary, cfg.Progress, cfg.Logger = "", "", nil, r.log
	log, err := os.OpenFile(filepath.Join(r.cfg.Out, "workers.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	command := []string{r.cfg.Exe, "worker"}
	if tr.tcpOnly {
		command = append(command, "-shared-memory=false")
	}
	in := compose.Inputs{Model: r.modelPath(tr.model), Workers: localworkers.Config{Command: command, Output: log}}
	if cfg, err = in.Job(cfg); err != nil {
		return nil, err
	}
	cfg.Data = r.data
	return coordinator.Run(ctx, cfg)
}

// Quick runs train and test on the first quickTrain and quickTest images:
// enough for the time-to-accuracy runs to pass their 0.5 target in one
// epoch, and every job sends its workers a tenth of the data.
const quickTrain, quickTest = 6000, 1000

// data is every training run's Config.Data: it reads the MNIST files on
// the first run and hands the later ones the same sets (a job never
// changes them), so that a suite decodes the 70,000 images once, not once
// a run.
func (r *runner) data(ctx context.Context) (train, test *mnist.Set, err error) {
	if r.train == nil {
		if train, test, err = trainingdata.Load(ctx, trainingdata.Source{Dir: r.dataDir}, r.log); err != nil {
			return nil, nil, err
		}
		if r.cfg.Quick {
			train, test = train.Subset(firstN(quickTrain)), test.Subset(firstN(quickTest))
		}
		r.train, r.test = train, test
	}
	return r.train, r.test, nil
}

// firstN returns 0, 1, …, n−1.
func firstN(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// peerThreads: the peer's processes keep one intra-op thread each. Its
// OpenBLAS (pthreads) already spreads every product over the cores the
// process may use, and intra-op threads beside it fight it: one process
// on two cores with torch.set_num_threads(2) trained 784-1024-1024-10 at
// batch 256 at 4,411 samples/s against 14,976 with one thread, and the
// Keras example at batch 256 at 165,384 against 656,183 (bench/torch_step.py,
// 2026-12-01). With several processes, OpenBLAS's default threads (one
// per core, more threads than cores) was still the faster choice: two
// DDP workers on 784-512-512-10 trained 24,791–24,991 samples/s against
// 20,431–21,685 with OPENBLAS_NUM_THREADS=1.

// peer runs the same training with PyTorch DDP.
func (r *runner) peer(ctx context.Context, tr trainRun, target float64) (map[string]any, error) {
	epochs := max(tr.epochs, 1)
	if tr.steps > 0 {
		epochs = 1 << 20 // --max-steps decides
	}
	args := append([]string{r.dataDir, "--workers", fmt.Sprint(tr.workers), "--batch", fmt.Sprint(tr.perWorkerBatch),
		"--threads", "1"}, tr.model.peerModel()...) // threads: see peerThreads
	args = append(args, "--epochs", fmt.Sprint(epochs), "--max-steps", fmt.Sprint(tr.steps))
	if tr.scaleLR {
		args = append(args, "--scale-lr", "--warmup-epochs", "1")
	}
	if target > 0 {
		args = append(args, "--target-accuracy", fmt.Sprint(target))
	}
	out, err := r.runPeer(ctx, "torch_ddp.py", args...)
	if err != nil {
		return nil, err
	}
	if len(out) != 1 {
		return nil, fmt.Errorf("torch_ddp.py printed %d results", len(out))
	}
	return out[0], nil
}

// models are the models of the scaling suites: both, or the Keras example
// alone in quick mode.
func (r *runner) models() []benchModel {
	if r.cfg.Quick {
		return []benchModel{kerasModel}
	}
	return []benchModel{kerasModel, mlp1024}
}

// weak runs weak scaling: fixed per-worker batch, growing worker count.
func (r *runner) weak(ctx context.Context) error {
	for _, m := range r.models() {
		for _, b := range []int{32, 256} {
			base := map[string]float64{}
			for _, n := range r.cfg.Workers {
				tr := trainRun{model: m, workers: n, perWorkerBatch: b, steps: r.trainSteps(m, b)}
				if err := r.scalingRun(ctx, "weak", tr, base); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// strong runs strong scaling: fixed global batch 256 split over the
// workers.
func (r *runner) strong(ctx context.Context) error {
	const global = 256
	for _, m := range r.models() {
		base := map[string]float64{}
		for _, n := range r.cfg.Workers {
			if global%n != 0 {
				continue
			}
			tr := trainRun{model: m, workers: n, perWorkerBatch: global / n, steps: r.trainSteps(m, global)}
			if err := r.scalingRun(ctx, "strong", tr, base); err != nil {
				return err
			}
		}
	}
	return nil
}

// scalingRun measures one configuration for both implementations. base
// holds each implementation's single-worker figure (throughput for weak
// scaling, epoch time for strong scaling) once measured.
func (r *runner) scalingRun(ctx context.Context, suite string, tr trainRun, base map[string]float64) error {
	sum, err := r.ringtrain(ctx, tr)
	if err != nil {
		return fmt.Errorf("ringtrain %s, %d workers, batch %d: %w", tr.model.name, tr.workers, tr.perWorkerBatch, err)
	}
	rec := Record{Suite: suite, Impl: "ringtrain", Model: tr.model.name, Workers: tr.workers, PerWorkerBatch: tr.perWorkerBatch,
		GlobalBatch: sum.GlobalBatch, Steps: sum.Steps, SamplesPerSecond: sum.SamplesPerSecond,
		StepMillis: &StepSplit{sum.StepMillis.Compute, sum.StepMillis.Allreduce, sum.StepMillis.Optimizer}, Note: r.note(tr.workers)}
	if err := r.addScaling(suite, rec, base); err != nil {
		return err
	}
	r.logf("%s %s N=%d b=%d: ringtrain %.0f samples/s", suite, tr.model.name, tr.workers, tr.perWorkerBatch, rec.SamplesPerSecond)
	if r.python == "" {
		return nil
	}
	m, err := r.peer(ctx, tr, 0)
	if err != nil {
		return err
	}
	rec = Record{Suite: suite, Impl: "pytorch-gloo", Model: tr.model.name, Workers: tr.workers, PerWorkerBatch: tr.perWorkerBatch,
		GlobalBatch: int(num(m, "global_batch")), Steps: int(num(m, "steps")), SamplesPerSecond: num(m, "samples_per_second"),
		Note: peerRowNote(m, r.note(tr.workers))}
	r.logf("%s %s N=%d b=%d: pytorch %.0f samples/s", suite, tr.model.name, tr.workers, tr.perWorkerBatch, rec.SamplesPerSecond)
	return r.addScaling(suite, rec, base)
}

// addScaling completes a scaling record with its efficiency or speed-up
// relative to the implementation's single-worker run.
func (r *runner) addScaling(suite string, rec Record, base map[string]float64) error {
	epochSamples := 60000 / rec.GlobalBatch * rec.GlobalBatch
	switch suite {
	case "weak":
		if rec.Workers == 1 {
			base[rec.Impl] = rec.SamplesPerSecond
		}
		if b := base[rec.Impl]; b > 0 {
			rec.Efficiency = rec.SamplesPerSecond / (float64(rec.Workers) * b)
		}
	case "strong":
		rec.EpochSeconds = float64(epochSamples) / rec.SamplesPerSecond
		if rec.Workers == 1 {
			base[rec.Impl] = rec.EpochSeconds
		}
		if b := base[rec.Impl]; b > 0 {
			rec.Speedup = b / rec.EpochSeconds
		}
	}
	return r.add(rec)
}

// ttaModel is a model of the time-to-accuracy suite and the test
// accuracy it must reach.
type ttaModel struct {
	model  benchModel
	target float64
}

// ttaModels are the time-to-accuracy suite's models, each given
// Config.TTAEpochs (both implementations train every epoch): the Keras
// example to Config.Target and, in a full run, 784-512-512-10 to 0.97 and
// the CNN to 0.98, accuracies each reaches in its first epochs.
func (r *runner) ttaModels() []ttaModel {
	ms := []ttaModel{{kerasModel, r.cfg.Target}}
	if !r.cfg.Quick {
		ms = append(ms, ttaModel{mlp512, 0.97}, ttaModel{cnnModel, 0.98})
	}
	return ms
}

// timeToAccuracy measures the training time to reach each model's target
// test accuracy at per-worker batch 32, with the linear scaling rule and
// one epoch of warm-up for more than one worker.
func (r *runner) timeToAccuracy(ctx context.Context) error {
	for _, tm := range r.ttaModels() {
		m := tm.model
		if err := os.WriteFile(r.modelPath(m), m.spec().JSON(), 0o644); err != nil {
			return err
		}
		for _, n := range r.cfg.Workers {
			if n > 4 {
				continue
			}
			if err := r.timeToAccuracyOf(ctx, tm, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// timeToAccuracyOf runs one model and worker count of the suite, for
// ringtrain and the peer.
func (r *runner) timeToAccuracyOf(ctx context.Context, tm ttaModel, n int) error {
	m := tm.model
	tr := trainRun{model: m, workers: n, perWorkerBatch: 32, epochs: r.cfg.TTAEpochs, scaleLR: n > 1}
	sum, err := r.ringtrain(ctx, tr)
	if err != nil {
		return fmt.Errorf("ringtrain, %s, %d workers: %w", m.name, n, err)
	}
	rec := Record{Suite: "tta", Impl: "ringtrain", Model: m.name, Workers: n, PerWorkerBatch: 32,
		GlobalBatch: sum.GlobalBatch, Steps: sum.Steps, Accuracy: float64(sum.TestAccuracy), Target: tm.target, Note: r.note(n)}
	for _, e := range sum.EpochMetrics {
		if float64(e.TestAccuracy) >= tm.target {
			rec.TimeToAccuracy = e.WallSeconds
			break
		}
	}
	r.ttaNote(&rec)
	if err := r.add(rec); err != nil {
		return err
	}
	r.logf("time to %.3g, %s, N=%d: ringtrain %.2fs", tm.target, m.name, n, rec.TimeToAccuracy)
	if r.python == "" {
		return nil
	}
	p, err := r.peer(ctx, tr, tm.target)
	if err != nil {
		return err
	}
	rec = Record{Suite: "tta", Impl: "pytorch-gloo", Model: m.name, Workers: n, PerWorkerBatch: 32,
		GlobalBatch: int(num(p, "global_batch")), Steps: int(num(p, "steps")), Accuracy: num(p, "test_accuracy"),
		TimeToAccuracy: num(p, "seconds_to_target"), Target: tm.target, Note: peerRowNote(p, r.note(n))}
	r.ttaNote(&rec)
	if err := r.add(rec); err != nil {
		return err
	}
	r.logf("time to %.3g, %s, N=%d: pytorch %.2fs", tm.target, m.name, n, rec.TimeToAccuracy)
	return nil
}

func (r *runner) ttaNote(rec *Record) {
	if rec.TimeToAccuracy == 0 {
		rec.Note = strings.TrimPrefix(rec.Note+fmt.Sprintf("; %.3g not reached in %d epochs", rec.Target, r.cfg.TTAEpochs), "; ")
	}
}
