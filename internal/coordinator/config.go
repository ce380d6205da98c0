// Package coordinator is the driver of a training job's ring lifecycle,
// which internal/control decides: it serves the workers over gRPC, watches
// them through gossip (internal/membership), turns what happens (joins,
// reports, lost members, timers, signals) into the state machine's events
// and carries out its actions (rings assigned, aborted and rolled back,
// workers released, checkpoints written), with a reporter that turns them
// into the progress display, the metrics, the trace and the JSON summary.
// It plans the job (shards, learning-rate schedule, memory, message sizes),
// evaluates on the test set at every epoch's end and writes the outputs.
//
// It composes nothing itself: its caller gives it the data to train on,
// the model description and, for local workers, the launcher that starts
// them (Config.Data, Job.Model, Config.Launcher); internal/compose builds
// them for the command line (internal/cli) and ringbench.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"ringtrain/internal/membership"
	"ringtrain/internal/metrics"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
	"ringtrain/internal/sysmem"
	"ringtrain/internal/transportsec"
)

// DefaultPort is the coordinator's gRPC port when it waits for remote
// workers.
const DefaultPort = 7070

// Config configures a job: what it trains (Job), the processes that
// train it and how they find and trust each other (Cluster), and the files
// it writes (Outputs), each part with its defaults (DefaultJob,
// DefaultCluster, DefaultOutputs) and its own Validate; then what the
// caller composes the job from: its data and the launcher of its local
// workers. DefaultConfig gives the defaults; internal/cli fills it from
// flags and environment variables and composes the inputs.
type Config struct {
	Job
	Cluster
	Outputs
	// Data loads the training and test sets; required. Run calls it with
	// its own context once its port is claimed, so cancelling that context
	// (Ctrl-C) stops a download. The command line reads -data or fetches
	// -data-url (package trainingdata).
	Data func(ctx context.Context) (train, test *mnist.Set, err error)
	// Launcher starts the local workers; required with LocalWorkers. The
	// command line starts processes (package localworkers).
	Launcher Launcher
	// Listener, when not nil, is used instead of listening on Listen; Run
	// closes it.
	Listener net.Listener
	// Shutdown, when closed, stops the job for now (SIGTERM): the ring
	// pauses, rank 0's state is checkpointed (with CheckpointDir), and Run
	// returns ErrShutdown without releasing the workers, which wait for the
	// coordinator to come back.
	Shutdown <-chan struct{}
	// Progress receives the progress display (nil: none); Logger the logs
	// (nil: slog.Default()).
	Progress io.Writer
	Logger   *slog.Logger
}

// Job is what a job trains and how.
type Job struct {
	// Model is the model description (DefaultJob: the Keras MNIST
	// example); ModelName says where it came from, for messages (the
	// command line's -model file).
	Model     nn.Spec
	ModelName string
	// Epochs to train (default 5); MaxSteps, when positive, stops after
	// that many synchronized steps.
	Epochs, MaxSteps int
	// Batch is the per-worker batch (default 32); the global batch is
	// workers × Batch.
	Batch int
	// LR, when positive, replaces the model description's learning rate.
	LR float64
	// ScaleLR applies the linear scaling rule (Goyal et al., 2017): the
	// rate grows with the number of workers, reached by a linear warm-up
	// over WarmupEpochs.
	ScaleLR      bool
	WarmupEpochs float64
	// Seed seeds the initial weights, the shards and the data order
	// (default 1).
	Seed uint64
	// HashEvery is how often, in steps, the replicas' weights are compared
	// (default 100; 0: only at the end).
	HashEvery int
	// AllreduceTimeout bounds one gradient all-reduce (default 30 s).
	AllreduceTimeout time.Duration
	// SegmentBytes is the all-reduce frame size (0: the default).
	SegmentBytes int
	// BucketBytes is the size of the gradient buckets the workers reduce
	// while the backward pass goes on, the last layers' first (at least
	// that many bytes on the wire, whole layers); 0 reduces the gradient in
	// one all-reduce after the backward pass. The default,
	// AutoBucketBytes, is 0 with LocalWorkers and DefaultBucketBytes with
	// remote workers.
	BucketBytes int
	// Deterministic makes the final weights independent of the number of
	// workers: gradients are summed exactly, as fixed-point integers, over
	// micro-batches of MicroBatch samples (0: DefaultMicroBatch), starting
	// at FixedPointBits fractional bits (0: fixedpoint.DefaultBits).
	Deterministic  bool
	MicroBatch     int
	FixedPointBits int
	// Compression is how gradients travel between the workers:
	// CompressionNone (the default, "" too: float32, float64 for a float64
	// model), CompressionFP16 or CompressionBF16 (16-bit floats, half of
	// float32's bytes, with error feedback). Not with Deterministic, whose
	// sums are exact.
	Compression string
	// NonFinite is what a step whose gradient is NaN or ±Inf on any worker
	// does: NonFiniteStop (the default) fails the job naming the worker
	// and its samples; NonFiniteSkip skips the update on every replica,
	// logs it and counts it.
	NonFinite string
	// RingFailures is how many rings in a row may fail before completing a
	// step before the job gives up, listing their causes (default 3).
	RingFailures int
	// Evaluations is when the state at each epoch's end but the last is
	// evaluated on the test set: EvalDuring evaluates it as it arrives,
	// beside the training; EvalAfter keeps its parameters and evaluates
	// it once the last step is done (keeping at most maxKeptEvaluation
	// bytes of them: beyond, the oldest is evaluated at once). The
	// default, EvalAuto ("" too), is EvalAfter when the local workers fill
	// the CPUs this process may use, where an evaluation would take a
	// core from the training (and every member of a ring waits for the
	// slowest), and EvalDuring otherwise. The figures are the same either
	// way; only when they appear changes, and a coordinator killed during
	// the training loses the ones it kept.
	Evaluations string
	// Folds, when 2 or more, makes the job one fold of a cross-validation:
	// the training set is dealt into Folds parts by a permutation of Seed,
	// the job trains on all but part Fold and evaluates on that part instead
	// of the test set (the summary's test metrics are validation metrics).
	Folds, Fold int
}

// modelName is " " and Job.ModelName, or "" without one, to follow "the
// model description" in messages.
func (c Job) modelName() string {
	if c.ModelName == "" {
		return ""
	}
	return " " + c.ModelName
}

// DefaultJob returns the Keras example's settings: its model, batch 32,
// 5 epochs, Adam at its default rate, seed 1; replicas compared every 100
// steps, a 30 s all-reduce deadline, AutoBucketBytes, training
// stopped by a non-finite gradient, 3 failed rings in a row allowed, and
// EvalAuto.
func DefaultJob() Job {
	return Job{
		Model:            nn.KerasMNIST(),
		Epochs:           5,
		Batch:            32,
		Seed:             1,
		HashEvery:        100,
		AllreduceTimeout: 30 * time.Second,
		BucketBytes:      AutoBucketBytes,
		NonFinite:        NonFiniteStop,
		RingFailures:     3,
		Evaluations:      EvalAuto,
	}
}

// Cluster is the processes that train a job and how they find, watch and
// trust each other.
type Cluster struct {
	// Listen is the coordinator's gRPC address. Empty means 127.0.0.1 at a
	// free port with local workers, :7070 otherwise.
	Listen string
	// Advertise is the gRPC address workers that find the coordinator
	// through gossip dial. Empty means the listening address, with an
	// unspecified host replaced by the gossip node's address.
	Advertise string
	// Workers is the number of remote workers to wait for; LocalWorkers the
	// number of worker processes to start on this machine (through
	// Config.Launcher). One of them is set. The job starts once they have
	// all joined.
	Workers, LocalWorkers int
	// MinWorkers is the smallest ring the job trains with after losing
	// workers (default 1): below it, the job waits up to JoinTimeout for
	// joins, then fails. MaxWorkers caps the ring when workers join during
	// the job (0: the starting count); extra workers wait.
	MinWorkers, MaxWorkers int
	// GossipListen and GossipAdvertise are the coordinator's memberlist
	// addresses (default: 127.0.0.1 at a free port with local workers,
	// :7946 otherwise). ProbeInterval and ProbeTimeout tune failure
	// detection (zero: memberlist's LAN defaults).
	GossipListen, GossipAdvertise string
	ProbeInterval, ProbeTimeout   time.Duration
	// JoinTimeout bounds the wait for the workers (default a minute).
	JoinTimeout time.Duration
	// CompleteGrace is how long a coordinator that finds its job already
	// complete (its newest checkpoint holds the last step) stays to
	// release the workers that come back to it before it ends (default
	// DefaultCompleteGrace).
	CompleteGrace time.Duration
	// Security holds the job's credentials: mutual TLS, the token every
	// worker must present, the gossip key. The zero value is insecure.
	Security transportsec.Security
	// HealthListen, when set, also serves the gRPC health service there,
	// in plaintext (Kubernetes probes cannot speak mutual TLS).
	HealthListen string
	// MetricsListen is where /metrics is served (default: 127.0.0.1 at a
	// free port with local workers, :9090 otherwise; "-" disables).
	MetricsListen string
	// MemoryLimit bounds the memory the job may need on this machine (the
	// coordinator, and its local workers): a model whose estimate exceeds
	// it is refused before the first step, and evaluations run in chunks
	// that fit. Zero means the machine's memory, or its cgroup's limit
	// when lower.
	MemoryLimit sysmem.Bytes
}

// DefaultCompleteGrace is Cluster.CompleteGrace's default: longer than a
// waiting worker's longest retry interval, so every worker that waits for
// the coordinator's return is released.
const DefaultCompleteGrace = 6 * time.Second

// DefaultCluster returns a cluster that still needs its worker count:
// rings of at least one worker, a minute to wait for joins, the default
// addresses, memberlist's LAN failure detection, no credentials.
func DefaultCluster() Cluster {
	return Cluster{
		MinWorkers:    1,
		JoinTimeout:   time.Minute,
		CompleteGrace: DefaultCompleteGrace,
	}
}

// Outputs are the files a job writes.
type Outputs struct {
	// CheckpointDir, when set, holds the job's checkpoints: one every
	// CheckpointEvery steps (0: only at epoch ends) and at every epoch's
	// end, the newest CheckpointKeep kept (default 3). A coordinator
	// started with a folder that holds checkpoints resumes from the newest
	// valid one.
	CheckpointDir   string
	CheckpointEvery int
	CheckpointKeep  int
	// Checkpoint and Summary are where the final checkpoint and the JSON
	// summary go (default ringtrain.ckpt and ringtrain-summary.json);
	// empty skips them.
	Checkpoint, Summary string
	// Trace, when set, is where the workers' timelines go, as a Chrome
	// trace-event JSON file (Perfetto, chrome://tracing).
	Trace string
	// Plot, when set, is where a PNG goes of the training loss at every
	// step (means of runs of steps in long jobs) and the test loss and
	// accuracy at every evaluation, against epochs.
	Plot string
	// Overwrite lets the job replace files an earlier run left where its
	// outputs go (Checkpoint, Summary, Trace, Plot). Without it a job whose
	// outputs exist refuses to start, naming them.
	Overwrite bool
}

// DefaultOutputs returns the final checkpoint in ringtrain.ckpt, the
// summary in ringtrain-summary.json, no trace or plot, and 3 checkpoints
// kept when a checkpoint folder is given.
func DefaultOutputs() Outputs {
	return Outputs{
		Checkpoint:     "ringtrain.ckpt",
		Summary:        "ringtrain-summary.json",
		CheckpointKeep: 3,
	}
}

// DefaultConfig returns the parts' defaults, the progress display on
// standard error and slog's default logger. Data, and Launcher with local
// workers, are the caller's to give.
func DefaultConfig() Config {
	return Config{
		Job:      DefaultJob(),
		Cluster:  DefaultCluster(),
		Outputs:  DefaultOutputs(),
		Progress: os.Stderr,
		Logger:   slog.Default(),
	}
}

// DefaultBucketBytes is the default gradient bucket, 512 KiB: small enough
// that the models trained here (784-512-512-10: 2.7 MB of float32
// gradient, the CNN of examples/cnn.json: 0.9 MB) are cut into more than
// one bucket, whose reductions overlap the first layers' backward pass,
// and large enough that a bucket's collective costs far more than its
// 2(N−1) frame latencies. (PyTorch's 25 MB is for models a hundred times
// larger.)
const DefaultBucketBytes = 512 << 10

// AutoBucketBytes (Job.BucketBytes) overlaps the all-reduce with the
// backward pass for remote workers only (DefaultBucketBytes), not for local
// ones (0). On one machine the all-reduce is CPU work on the same cores as
// the backward pass, so overlapping it only adds the buckets' hand-overs:
// two local workers on the CNN of bench/cnn-noschedule.json trained 7,168–
// 7,293 samples/s with 512 KiB buckets and 10,674–10,944 without (three
// interleaved runs each); across a network the links work while the cores
// compute (784-512-512-10 at N = 4 on 1 Gb/s links: 2.42× loopback's step
// time without overlap, 1.61× with; BENCHMARKS.md).
const AutoBucketBytes = -1

// bucketBytes is the job's bucket size, AutoBucketBytes resolved.
func (c Config) bucketBytes() int {
	if c.BucketBytes != AutoBucketBytes {
		return c.BucketBytes
	}
	if c.LocalWorkers > 0 {
		return 0
	}
	return DefaultBucketBytes
}

// Validate reports the first invalid field of the parts, then of their
// combination.
func (c Config) Validate() error {
	if err := c.Cluster.Validate(); err != nil {
		return err
	}
	if err := c.Job.Validate(); err != nil {
		return err
	}
	if err := c.Outputs.Validate(); err != nil {
		return err
	}
	if c.Deterministic && c.microBatch() > 0 && c.Batch%c.microBatch() != 0 {
		return fmt.Errorf("coordinator: the micro-batch of %d samples does not divide the per-worker batch of %d", c.microBatch(), c.Batch)
	}
	return nil
}

// Validate reports the first invalid field.
func (c Cluster) Validate() error {
	switch {
	case c.Workers < 0 || c.LocalWorkers < 0:
		return errors.New("coordinator: worker counts cannot be negative")
	case c.Workers > 0 && c.LocalWorkers > 0:
		return errors.New("coordinator: give -workers (remote) or -local-workers, not both")
	case c.Workers == 0 && c.LocalWorkers == 0:
		return errors.New("coordinator: no workers: give -local-workers N or -workers N")
	case c.Workers+c.LocalWorkers > 1024:
		return fmt.Errorf("coordinator: %d workers is more than the 1024 supported", c.Workers+c.LocalWorkers)
	case c.JoinTimeout <= 0:
		return errors.New("coordinator: the join timeout must be positive")
	case c.CompleteGrace < 0:
		return fmt.Errorf("coordinator: the grace of a complete job %v cannot be negative", c.CompleteGrace)
	case c.MinWorkers < 1 || c.MaxWorkers < 0 || (c.MaxWorkers > 0 && c.MaxWorkers < c.world()):
		return fmt.Errorf("coordinator: min workers %d must be at least 1, max workers %d at least the %d to start with", c.MinWorkers, c.MaxWorkers, c.world())
	}
	return nil
}

// Validate reports the first invalid field.
func (c Job) Validate() error {
	switch {
	case len(c.Model.Layers) == 0:
		return errors.New("coordinator: the model description has no layers")
	case c.Epochs < 1:
		return fmt.Errorf("coordinator: epochs %d must be at least 1", c.Epochs)
	case c.MaxSteps < 0:
		return fmt.Errorf("coordinator: max steps %d cannot be negative", c.MaxSteps)
	case c.Batch < 1:
		return fmt.Errorf("coordinator: batch %d must be at least 1", c.Batch)
	case c.LR < 0:
		return fmt.Errorf("coordinator: learning rate %v cannot be negative", c.LR)
	case c.WarmupEpochs < 0:
		return fmt.Errorf("coordinator: warm-up epochs %v cannot be negative", c.WarmupEpochs)
	case c.AllreduceTimeout < time.Millisecond:
		return fmt.Errorf("coordinator: the all-reduce timeout %v is under a millisecond", c.AllreduceTimeout)
	case c.HashEvery < 0 || c.SegmentBytes < 0 || (c.BucketBytes < 0 && c.BucketBytes != AutoBucketBytes):
		return errors.New("coordinator: hash interval, segment and bucket sizes cannot be negative")
	case c.MicroBatch < 0 || c.FixedPointBits < 0 || c.FixedPointBits > 62:
		return fmt.Errorf("coordinator: micro-batch %d and fixed-point bits %d out of range", c.MicroBatch, c.FixedPointBits)
	case c.NonFinite != NonFiniteStop && c.NonFinite != NonFiniteSkip:
		return fmt.Errorf("coordinator: non-finite policy %q: want %q or %q", c.NonFinite, NonFiniteStop, NonFiniteSkip)
	case c.Evaluations != "" && c.Evaluations != EvalAuto && c.Evaluations != EvalDuring && c.Evaluations != EvalAfter:
		return fmt.Errorf("coordinator: evaluations %q: want %q, %q or %q", c.Evaluations, EvalAuto, EvalDuring, EvalAfter)
	case c.Folds < 0 || c.Folds == 1 || (c.Folds > 1 && (c.Fold < 0 || c.Fold >= c.Folds)) || (c.Folds == 0 && c.Fold != 0):
		return fmt.Errorf("coordinator: fold %d of %d: want 2 or more folds and a fold from 0 to folds−1", c.Fold, c.Folds)
	case c.RingFailures < 1:
		return fmt.Errorf("coordinator: ring failure budget %d must be at least 1", c.RingFailures)
	case c.Compression != "" && c.Compression != CompressionNone && c.Compression != CompressionFP16 && c.Compression != CompressionBF16:
		return fmt.Errorf("coordinator: compression %q: want %q, %q or %q", c.Compression, CompressionNone, CompressionFP16, CompressionBF16)
	case c.Deterministic && c.Compression != "" && c.Compression != CompressionNone:
		return fmt.Errorf("coordinator: -compression %s cannot be combined with -deterministic, whose gradient sums are exact fixed-point integers", c.Compression)
	}
	return nil
}

// Validate reports the first invalid field.
func (c Outputs) Validate() error {
	if c.CheckpointEvery < 0 || c.CheckpointKeep < 1 {
		return fmt.Errorf("coordinator: checkpoint interval %d and count kept %d out of range", c.CheckpointEvery, c.CheckpointKeep)
	}
	return nil
}

// The non-finite gradient policies (Config.NonFinite).
const (
	NonFiniteStop = "stop"
	NonFiniteSkip = "skip"
)

// The gradient compressions (Config.Compression).
const (
	CompressionNone = "none"
	CompressionFP16 = "fp16"
	CompressionBF16 = "bf16"
)

// DefaultMicroBatch is the micro-batch size deterministic mode uses for a
// global batch unless told otherwise: the largest size that divides the
// per-worker batch of every worker count from 1 to 8 that divides the
// global batch (4 for a global batch of 96, 8 for 64). It depends on the
// global batch alone, so runs on different numbers of workers agree.
func DefaultMicroBatch(globalBatch int) int {
	g := 0
	for n := 1; n <= 8; n++ {
		if globalBatch%n == 0 {
			g = gcd(g, globalBatch/n)
		}
	}
	return g
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// microBatch is the deterministic mode's micro-batch size.
func (c Config) microBatch() int {
	if c.MicroBatch > 0 {
		return c.MicroBatch
	}
	return DefaultMicroBatch(c.world() * c.Batch)
}

// world is the number of workers in the ring.
func (c Cluster) world() int { return c.Workers + c.LocalWorkers }

// maxWorkers is the ring's cap.
func (c Cluster) maxWorkers() int {
	if c.MaxWorkers > 0 {
		return c.MaxWorkers
	}
	return c.world()
}

func (c Cluster) gossipAddr() string {
	switch {
	case c.GossipListen != "":
		return c.GossipListen
	case c.LocalWorkers > 0:
		return "127.0.0.1:0"
	default:
		return fmt.Sprintf(":%d", membership.DefaultPort)
	}
}

func (c Cluster) metricsAddr() string {
	switch {
	case c.MetricsListen == "-":
		return ""
	case c.MetricsListen != "":
		return c.MetricsListen
	case c.LocalWorkers > 0:
		return "127.0.0.1:0"
	default:
		return fmt.Sprintf(":%d", metrics.DefaultPort)
	}
}

func (c Cluster) listenAddr() string {
	switch {
	case c.Listen != "":
		return c.Listen
	case c.LocalWorkers > 0:
		return "127.0.0.1:0"
	default:
		return fmt.Sprintf(":%d", DefaultPort)
	}
}
