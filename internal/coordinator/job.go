package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"ringtrain/internal/control"
	"ringtrain/internal/fixedpoint"
	"ringtrain/internal/grpcopts"
	"ringtrain/internal/membership"
	"ringtrain/internal/metrics"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
	"ringtrain/internal/sampler"
	"ringtrain/internal/transportsec"
	"ringtrain/internal/wire"
	pb "ringtrain/proto"
)

// Run runs the job cfg describes to its end and returns its summary. The
// error names what failed: a worker that was lost, a replica that diverged,
// workers that never joined, bad input.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	lis := cfg.Listener
	defer func() {
		// The gRPC server closes it too; this covers early returns.
		if lis != nil {
			lis.Close()
		}
	}()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Data == nil:
		return nil, errors.New("coordinator: no data to train on (Config.Data)")
	case cfg.LocalWorkers > 0 && cfg.Launcher == nil:
		return nil, errors.New("coordinator: no launcher for the local workers (Config.Launcher)")
	}
	// Every output location is checked before anything runs.
	if err := cfg.checkOutputs(); err != nil {
		return nil, err
	}
	var generated []string
	if cfg.LocalWorkers > 0 {
		// Secure by default: the children get the secrets through their
		// environment, and nobody else can join or speak for them.
		generated = cfg.Security.FillLocal()
	}
	if err := cfg.Security.Load(); err != nil {
		return nil, err
	}
	// The port is claimed before the data loads: a port in use fails at
	// once, and nothing else can take it during the load.
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", cfg.listenAddr()); err != nil {
			return nil, fmt.Errorf("coordinator: listen: %w", err)
		}
	}
	begun := time.Now()
	c, err := newCoordinator(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c.begun = begun
	c.log.Info("security", "mode", cfg.Security.Describe())
	if len(generated) > 0 {
		c.log.Info("generated secrets for the local workers, passed through their environment", "secrets", generated)
	}
	if msg, loud := cfg.Security.Exposure(lis.Addr(), transportsec.CoordinatorRisk); loud {
		c.log.Warn(msg)
	} else if msg != "" {
		c.log.Info(msg)
	}
	srv := grpc.NewServer(c.cfg.Security.ServerOptions()...)
	pb.RegisterCoordinatorServer(srv, &service{c: c})
	c.health = health.NewServer()
	healthpb.RegisterHealthServer(srv, c.health)
	defer c.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if cfg.HealthListen != "" {
		stop, err := grpcopts.ServeHealth(cfg.HealthListen, c.health)
		if err != nil {
			return nil, fmt.Errorf("coordinator: %w", err)
		}
		defer stop()
	}
	if addr := cfg.metricsAddr(); addr != "" {
		ms, err := c.serveMetrics(addr)
		if err != nil {
			return nil, fmt.Errorf("coordinator: %w", err)
		}
		defer ms.Close()
		c.log.Info("serving metrics", "addr", ms.Addr())
	}
	var serving sync.WaitGroup
	serving.Add(1)
	go func() {
		defer serving.Done()
		srv.Serve(lis)
	}()
	defer serving.Wait()
	defer grpcopts.StopServer(srv, stopDelivery)
	c.addr = lis.Addr().String()
	c.node, err = membership.Start(membership.Config{Name: "coordinator-" + c.job.JobId, Bind: cfg.gossipAddr(),
		Advertise: cfg.GossipAdvertise, ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout,
		SecretKey: cfg.Security.GossipKeyBytes(),
		Meta:      membership.Meta{Role: membership.Coordinator}, Logger: c.log})
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", c.gossipTaken(err))
	}
	defer c.node.Leave(time.Second)
	if err := c.node.SetMeta(membership.Meta{Role: membership.Coordinator, GRPC: c.advertisedAddr()}); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	c.log.Info("coordinator listening", "addr", c.addr, "gossip", c.node.Addr(), "job", c.job.JobId, "workers", cfg.world(),
		"global_batch", c.globalBatch(), "steps", c.job.MaxSteps, "start_step", c.startStep, "model", c.spec.Summary())

	if cfg.LocalWorkers > 0 {
		local, err := startLocalWorkers(cfg, c.addr, c.node.Addr(), c.events)
		if err != nil {
			return nil, err
		}
		c.local = local
		defer local.stop()
	}
	return c.supervise(ctx)
}

// coordinator is the state of one job. The supervise loop owns everything
// below events; the gRPC handlers only read the immutable fields and send
// events.
type coordinator struct {
	cfg  Config
	log  *slog.Logger
	addr string
	// begun is when Run began, before the data loaded.
	begun time.Time

	job   *pb.JobSpec
	spec  nn.Spec
	plan  *sampler.Plan
	train *mnist.Set
	test  *mnist.Set
	// initial is the state the job starts from, at startStep: fresh
	// weights, or a checkpoint's state.
	initial   *wire.State
	startStep uint64
	// resumed is the history saved with the checkpoint the job resumed
	// from, when there was one.
	resumed *history
	// numParams and numSlots size the model's state, for uploads.
	numParams, numSlots int
	// evalRows is how many test samples an evaluation takes at a time, so
	// that it fits the memory bound.
	evalRows int
	// evalModel is the model evaluations load each state into, made by
	// the first: evaluations then allocate nothing (nn.Model.EvaluateRange),
	// so they neither grow the heap nor make the collector run. evalMu
	// lets one evaluation at a time use it.
	evalMu    sync.Mutex
	evalModel *nn.Model
	started   time.Time

	events chan event
	// done is closed when the job has ended; handlers then return.
	done chan struct{}

	registry *registry
	// members issues and checks the workers' member credentials;
	// assigned records which worker holds which rank of which ring.
	members  *transportsec.Members
	assigned *assignments
	states   *stateStore
	node     *membership.Node
	metrics  *metrics.Coordinator
	// health is SERVING until the coordinator shuts down.
	health *health.Server
	// joins counts the running Join handlers, so that a Stop can be
	// delivered before the job's end closes the streams; once ending is
	// set no handler joins it (joinMu guards both). over is the Stop of a
	// job that ended for good, which a worker joining after it is given
	// too (a shutdown, which the coordinator comes back from, leaves it
	// nil).
	joinMu sync.Mutex
	ending bool
	over   *pb.Stop
	joins  sync.WaitGroup
	local  *localWorkers
}

// newCoordinator loads the data (cfg.Data, with ctx), builds the model and
// the initial weights and plans the job.
func newCoordinator(ctx context.Context, cfg Config) (*coordinator, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	train, test, err := cfg.Data(ctx)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	if cfg.Folds > 1 {
		train, test = crossValidationSplit(train, cfg.Folds, cfg.Fold, cfg.Seed)
		log.Info("cross-validation", "fold", cfg.Fold, "folds", cfg.Folds, "train", train.Count, "validation", test.Count)
	}
	// Evaluations gather the test set as sparse rows: index it before the
	// job, not in its first evaluation, which shares the machine with the
	// training.
	test.IndexNonzero()
	spec := cfg.Model
	if cfg.LR > 0 {
		spec.Optimizer.LearningRate = cfg.LR
	}
	model, err := nn.New(spec)
	if err != nil {
		return nil, fmt.Errorf("coordinator: the model description%s: %w", cfg.modelName(), err)
	}
	if err := model.CheckDataset(train); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	model.Initialize(cfg.Seed)
	world := cfg.world()
	global := world * cfg.Batch
	plan, err := sampler.NewPlan(train.Count, global, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	spe := plan.StepsPerEpoch()
	steps := uint64(cfg.Epochs * spe)
	if cfg.MaxSteps > 0 {
		steps = min(steps, uint64(cfg.MaxSteps))
	}
	base := spec.Optimizer.LearningRate
	peak, warmup := base, uint64(0)
	if cfg.ScaleLR {
		peak = base * float64(world)
		warmup = uint64(math.Round(cfg.WarmupEpochs * float64(spe)))
	}
	job := &pb.JobSpec{
		JobId: newJobID(), ModelJson: string(spec.JSON()), Seed: cfg.Seed, Epochs: uint32(cfg.Epochs),
		MaxSteps: steps, PerWorkerBatch: uint32(cfg.Batch), WorldSize: uint32(world), StepsPerEpoch: uint64(spe),
		GlobalBatch: uint32(global), BaseLearningRate: base, PeakLearningRate: peak, WarmupSteps: warmup,
		HashEvery: uint32(cfg.HashEvery), AllreduceTimeoutMs: uint32(cfg.AllreduceTimeout.Milliseconds()),
		SegmentBytes: uint32(cfg.SegmentBytes), Trace: cfg.Trace != "", SkipNonfinite: cfg.NonFinite == NonFiniteSkip,
		BucketBytes: uint64(cfg.bucketBytes()),
	}
	if cfg.CheckpointDir != "" {
		job.CheckpointEvery = uint64(cfg.CheckpointEvery)
	}
	if cfg.Compression != CompressionNone {
		job.Compression = cfg.Compression
	}
	if cfg.Deterministic {
		job.Deterministic, job.MicroBatch, job.FixedPointBits = true, uint32(cfg.microBatch()), uint32(fixedpoint.DefaultBits)
		if cfg.FixedPointBits > 0 {
			job.FixedPointBits = uint32(cfg.FixedPointBits)
		}
	}
	if err := checkMessageSizes(job, min(cfg.maxWorkers(), maxRegistered), cfg.modelName()); err != nil {
		return nil, err
	}
	mem, err := planMemory(cfg, spec, train, test, model.NumParams(), len(model.Optimizer().State().Slots))
	if err != nil {
		return nil, err
	}
	log.Info("memory", "estimate", mem.need.String(), "limit", mem.limit.String(), "limit_from", mem.from, "evaluation_chunk", mem.evalRows)
	c := &coordinator{
		cfg: cfg, log: log, job: job, spec: spec, plan: plan, train: train, test: test, evalRows: mem.evalRows,
		initial:   &wire.State{Header: &pb.StateHeader{JobId: job.JobId}, Params: model.AppendParams(nil), Opt: model.Optimizer().State()},
		numParams: model.NumParams(), numSlots: len(model.Optimizer().State().Slots),
		started:  time.Now(),
		events:   make(chan event, 1024),
		done:     make(chan struct{}),
		registry: newRegistry(),
		members:  transportsec.NewMembers(),
		assigned: newAssignments(),
		states:   newStateStore(),
		metrics:  metrics.NewCoordinator(),
	}
	if cfg.CheckpointDir != "" {
		ck, path, err := resumeCheckpoint(cfg.CheckpointDir, log)
		if err != nil {
			return nil, err
		}
		if ck != nil {
			if ck.Spec.Summary() != spec.Summary() || ck.Seed != cfg.Seed {
				return nil, fmt.Errorf("coordinator: the checkpoints in %s are of another job (%s, seed %d); this one is %s, seed %d",
					cfg.CheckpointDir, ck.Spec.Summary(), ck.Seed, spec.Summary(), cfg.Seed)
			}
			if ck.Step > steps {
				return nil, fmt.Errorf("coordinator: the newest checkpoint in %s is at step %d, past the %d steps of this job", cfg.CheckpointDir, ck.Step, steps)
			}
			c.initial, c.startStep = checkpointState(ck, job.JobId), ck.Step
			if c.resumed, err = loadHistory(path, ck.Step, c.epochs()); err != nil {
				log.Warn("the checkpoint has no usable history: the summary will lack the metrics of the steps before it", "err", err)
			} else if b := c.resumed.FixedPointBits; b > 0 && job.Deterministic {
				c.initial.Header.FixedPointBits = uint32(b)
			}
		}
	}
	c.initial.Header.Step = c.startStep
	return c, nil
}

// epochs is the number of epochs the job's steps span.
func (c *coordinator) epochs() int {
	return int((c.job.MaxSteps + c.job.StepsPerEpoch - 1) / c.job.StepsPerEpoch)
}

// advertisedAddr is the gRPC address workers that find the coordinator
// through gossip dial.
func (c *coordinator) advertisedAddr() string {
	if c.cfg.Advertise != "" {
		return c.cfg.Advertise
	}
	host, port, err := net.SplitHostPort(c.addr)
	if err != nil {
		return c.addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if gh, _, err := net.SplitHostPort(c.node.Addr()); err == nil {
			host = gh
		}
	}
	return net.JoinHostPort(host, port)
}

// gossipAddr is the coordinator's memberlist address, for workers that did
// not join the cluster through seeds.
func (c *coordinator) gossipAddr() string {
	if c.node == nil {
		return ""
	}
	return c.node.Addr()
}

// maxWorkers is the largest ring this job forms.
func (c *coordinator) maxWorkers() int {
	unit := 1
	if c.job.Deterministic {
		unit = int(c.job.MicroBatch)
	}
	return min(c.cfg.maxWorkers(), control.MaxRingSize(int(c.job.GlobalBatch), unit))
}

func (c *coordinator) globalBatch() int { return int(c.job.GlobalBatch) }

func newJobID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
