package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ringtrain/internal/mnist/mnisttest"
	"ringtrain/internal/nn"
	"ringtrain/internal/testmain"
	"ringtrain/internal/worker"
)

// memberlist.Shutdown does not wait for a probe in flight to end; that
// goroutine finishes on its own.
func TestMain(m *testing.M) {
	testmain.RunWithCleanup(m, removeTestData, goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).triggerFunc"))
}

// removeTestData removes testData's folder, once the tests are done.
func removeTestData() {
	if dir, err := testData(); err == nil {
		os.RemoveAll(dir)
	}
}

// testData is the data the package's jobs train on: the first 6,400
// training and 1,000 test images of MNIST, written once. Loading and
// evaluating on the whole set would take most of these tests' time.
var testData = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ringtrain-coordinator-test")
	if err != nil {
		return "", err
	}
	return dir, mnisttest.WriteSubset(dir, 6400, 1000)
})

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig is a job on n in-process workers that talk real gRPC over
// loopback.
func testConfig(t *testing.T, n int) Config {
	if _, _, err := loadedTestSets(); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Workers, cfg.Data = n, testSets
	cfg.Checkpoint = filepath.Join(t.TempDir(), "model.ckpt")
	cfg.Summary = ""
	cfg.Logger = quiet
	cfg.Progress = nil
	cfg.JoinTimeout = 30 * time.Second
	cfg.GossipListen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

// runJob runs the coordinator and the named workers in this process and
// returns the coordinator's result and the workers' errors.
func runJob(t *testing.T, cfg Config, workerIDs ...string) (*Summary, error, []error) {
	t.Helper()
	return runJobWith(t, cfg, nil, workerIDs...)
}

// runJobWith is runJob with a function that adjusts each worker's
// configuration.
func runJobWith(t *testing.T, cfg Config, adjust func(*worker.Config), workerIDs ...string) (*Summary, error, []error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = lis
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(workerIDs))
	for i, id := range workerIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := testWorker(lis.Addr().String(), id)
			if adjust != nil {
				adjust(&wc)
			}
			errs[i] = worker.Run(ctx, wc)
		}()
	}
	sum, err := Run(ctx, cfg)
	wg.Wait()
	return sum, err, errs
}

// testWorker configures an in-process worker of id that joins the
// coordinator at addr, every port of its own choosing, quiet.
func testWorker(addr, id string) worker.Config {
	wc := worker.DefaultConfig()
	wc.Coordinator, wc.Listen, wc.ID, wc.Logger = addr, "127.0.0.1:0", id, quiet
	wc.GossipListen, wc.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	wc.JoinTimeout = time.Minute
	return wc
}

func workerIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("w-%d", i)
	}
	return ids
}

// TestDistributedEqualsSingleProcess trains 20 steps at global batch 64 on
// 2 and 4 workers and compares the weights with single-process training at
// batch 64: they agree to 1e-6 relative (only the order of floating-point
// additions differs). Every worker reports its weights after every step and
// all replicas must be bit-identical each time.
func TestDistributedEqualsSingleProcess(t *testing.T) {
	t.Parallel() // its jobs mostly wait on gRPC, gossip and the other goroutines
	const globalBatch, steps, seed = 64, 20, 7
	train, _, err := loadedTestSets()
	if err != nil {
		t.Fatal(err)
	}
	// One job checks both step-dependent parts of the update: the
	// learning-rate schedule and the pruning schedule.
	scheduled := nn.KerasMNIST()
	scheduled.Optimizer.Schedule = &nn.ScheduleSpec{Name: "cosine", WarmupSteps: 4, DecaySteps: 16, Alpha: 0.1}
	scheduled.Pruning = &nn.PruningSpec{Sparsity: 0.5, BeginStep: 4, EndStep: 16, Frequency: 4}
	for _, c := range []struct {
		name    string
		spec    nn.Spec
		workers []int
	}{{"keras", nn.KerasMNIST(), []int{2, 4}}, {"keras+cosine schedule+pruning", scheduled, []int{2}}} {
		ref, err := nn.New(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		ref.Initialize(seed)
		if _, err := ref.Fit(train, nn.FitConfig{BatchSize: globalBatch, Seed: seed, MaxSteps: steps}); err != nil {
			t.Fatal(err)
		}
		want := ref.AppendParams(nil)
		if c.spec.Pruning != nil && math.Abs(ref.Sparsity()-c.spec.Pruning.Sparsity) > 0.01 {
			t.Fatalf("%s: the reference's sparsity is %v", c.name, ref.Sparsity())
		}
		for _, n := range c.workers {
			t.Run(fmt.Sprintf("%s/workers=%d", c.name, n), func(t *testing.T) {
				t.Parallel()
				cfg := testConfig(t, n)
				cfg.Batch, cfg.MaxSteps, cfg.Seed, cfg.HashEvery, cfg.Model = globalBatch/n, steps, seed, 1, c.spec
				sum, err, werrs := runJob(t, cfg, workerIDs(n)...)
				if err != nil {
					t.Fatal(err)
				}
				for i, e := range werrs {
					if e != nil {
						t.Fatalf("worker %d: %v", i, e)
					}
				}
				if sum.ReplicaChecks != steps {
					t.Fatalf("replicas compared at %d steps, want every one of %d", sum.ReplicaChecks, steps)
				}
				ck, err := nn.LoadCheckpoint(cfg.Checkpoint)
				if err != nil {
					t.Fatal(err)
				}
				var maxAbs, maxDiff float64
				for i, w := range want {
					maxAbs = math.Max(maxAbs, math.Abs(w))
					maxDiff = math.Max(maxDiff, math.Abs(ck.Params[i]-w))
				}
				rel := maxDiff / maxAbs
				t.Logf("%d workers: largest difference %.3g, relative to the largest weight %.3g", n, maxDiff, rel)
				if rel > 1e-6 {
					t.Fatalf("distributed weights differ from single-process ones by %.3g relative", rel)
				}
				if ck.Step != steps || ck.Optimizer.Iterations != steps {
					t.Fatalf("checkpoint at step %d with %d optimizer iterations, want %d", ck.Step, ck.Optimizer.Iterations, steps)
				}
			})
		}
	}
}

func TestJoinTimeoutNamesMissingWorkers(t *testing.T) {
	t.Parallel() // it waits out the join timeout
	cfg := testConfig(t, 3)
	cfg.JoinTimeout = time.Second
	start := time.Now()
	_, err, werrs := runJob(t, cfg, "w-0", "w-1")
	if err == nil || !strings.Contains(err.Error(), "waited 1s for 3 workers, 2 joined (w-0, w-1); missing 1") {
		t.Fatalf("got %v, want a timeout naming who joined and how many are missing", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	for i, e := range werrs {
		if e == nil || !strings.Contains(e.Error(), "waited 1s for 3 workers") {
			t.Fatalf("worker %d: %v, want the coordinator's reason", i, e)
		}
	}
}

// TestBadModelDescriptionIsNamed: a model description nn refuses is
// refused before the job starts, naming the field and the description.
func TestBadModelDescriptionIsNamed(t *testing.T) {
	spec := nn.KerasMNIST()
	spec.Layers[1].Units = 0
	cfg := testConfig(t, 1)
	cfg.Model, cfg.ModelName = spec, "model.json"
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "layers[1].units: must be at least 1") || !strings.Contains(err.Error(), "model.json") {
		t.Fatalf("got %v", err)
	}
}

// TestTraceAndPlot runs a short job with -trace and -plot: the trace is
// Chrome trace-event JSON with every step's spans for every rank, and the
// plot a PNG.
func TestTraceAndPlot(t *testing.T) {
	t.Parallel() // its job mostly waits on gRPC, gossip and the other goroutines
	const steps = 30
	cfg := testConfig(t, 2)
	dir := t.TempDir()
	cfg.MaxSteps, cfg.Trace, cfg.Plot = steps, filepath.Join(dir, "trace.json"), filepath.Join(dir, "plot.png")
	if _, err, werrs := runJob(t, cfg, workerIDs(2)...); err != nil || werrs[0] != nil || werrs[1] != nil {
		t.Fatalf("job: %v, workers: %v", err, werrs)
	}
	data, err := os.ReadFile(cfg.Trace)
	if err != nil {
		t.Fatal(err)
	}
	var trace struct {
		TraceEvents []struct {
			Name string
			Ph   string
			Pid  int
			Dur  float64
			Args map[string]any
		}
	}
	if err := json.Unmarshal(data, &trace); err != nil {
		t.Fatalf("trace is not JSON: %v", err)
	}
	count := map[string]int{}
	names := map[int]string{}
	for _, e := range trace.TraceEvents {
		switch e.Ph {
		case "M":
			if e.Name == "process_name" {
				names[e.Pid] = fmt.Sprint(e.Args["name"])
			}
		case "X":
			count[fmt.Sprintf("%d/%s", e.Pid, e.Name)]++
		}
	}
	for rank := 0; rank < 2; rank++ {
		if !strings.Contains(names[rank], fmt.Sprintf("rank %d (w-%d)", rank, rank)) {
			t.Errorf("process %d named %q", rank, names[rank])
		}
		for _, span := range []string{"data", "forward-backward", "reduce-scatter", "all-gather", "optimizer"} {
			if n := count[fmt.Sprintf("%d/%s", rank, span)]; n != steps {
				t.Errorf("rank %d has %d %s spans, want %d", rank, n, span, steps)
			}
		}
	}
	png, err := os.ReadFile(cfg.Plot)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("plot is not a PNG (%v)", err)
	}
}

// TestInProcessWorkerLossRecovers stops one of three in-process workers in
// the middle of a job (its context ends: its streams close, as a crashed
// process's would): the others roll back if need be, re-form the ring and
// finish, and the summary records the change. The loss comes at the first
// progress line (a tenth of the first epoch, 6 steps); the survivors cannot
// step without the victim, so the job only has to outlast the cancel's
// reaching it: 120 steps leave it over 100.
func TestInProcessWorkerLossRecovers(t *testing.T) {
	t.Parallel() // its job mostly waits on gRPC, gossip and the other goroutines
	cfg := testConfig(t, 3)
	cfg.MaxSteps, cfg.HashEvery = 120, 10
	training := &firstWrite{ch: make(chan struct{})}
	cfg.Progress = training // progress lines start once steps run
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = lis
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	victimCtx, kill := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, id := range workerIDs(3) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx := ctx
			if i == 1 {
				wctx = victimCtx
			}
			errs[i] = worker.Run(wctx, testWorker(lis.Addr().String(), id))
		}()
	}
	go func() {
		select {
		case <-training.ch:
			kill()
		case <-ctx.Done():
		}
	}()
	sum, err := Run(ctx, cfg)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[2] != nil || errs[1] == nil {
		t.Fatalf("worker errors %v: want only w-1 to fail", errs)
	}
	if sum.Workers != 2 || sum.Rings != 2 || len(sum.MembershipChanges) == 0 || sum.MembershipChanges[0].Worker != "w-1" {
		t.Fatalf("summary: %d workers, %d rings, changes %+v", sum.Workers, sum.Rings, sum.MembershipChanges)
	}
	if steps := uint64(sum.Steps); sum.WorkerSteps["w-0"] != steps || sum.WorkerSteps["w-1"] >= steps {
		t.Fatalf("worker steps %v; changes %+v; rollbacks %d", sum.WorkerSteps, sum.MembershipChanges, sum.Rollbacks)
	}
	t.Logf("w-1 was lost after %d of %d steps", sum.WorkerSteps["w-1"], sum.Steps)
}

// firstWrite closes ch at its first write.
type firstWrite struct {
	once sync.Once
	ch   chan struct{}
}

func (f *firstWrite) Write(b []byte) (int, error) {
	f.once.Do(func() { close(f.ch) })
	return len(b), nil
}

// TestNonFiniteGradientPolicy diverges a job on purpose (learning rate
// 1e300: the weights overflow after a step or two). Under the stop policy
// the job fails naming the step and the workers; under the skip policy it
// completes and counts the steps no replica applied.
func TestNonFiniteGradientPolicy(t *testing.T) {
	t.Parallel() // its job mostly waits on gRPC, gossip and the other goroutines
	for _, policy := range []string{NonFiniteStop, NonFiniteSkip} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, 2)
			cfg.MaxSteps, cfg.LR, cfg.NonFinite = 12, 1e300, policy
			cfg.Summary = filepath.Join(t.TempDir(), "summary.json")
			sum, err, werrs := runJob(t, cfg, workerIDs(2)...)
			// Whatever the numbers, a valid summary is written, saying how
			// the job ended; a loss that is not finite is left out.
			data, rerr := os.ReadFile(cfg.Summary)
			if rerr != nil {
				t.Fatalf("no summary: %v", rerr)
			}
			var written struct {
				Status   string   `json:"status"`
				Error    string   `json:"error"`
				TestLoss *float64 `json:"test_loss"`
			}
			if err := json.Unmarshal(data, &written); err != nil {
				t.Fatalf("summary %s: %v", data, err)
			}
			if want := map[string]string{NonFiniteStop: StatusFailed, NonFiniteSkip: StatusCompleted}[policy]; written.Status != want ||
				(policy == NonFiniteStop && !strings.Contains(written.Error, "not finite")) {
				t.Fatalf("summary status %q, error %q: want %q and, when failed, the cause", written.Status, written.Error, want)
			}
			if policy == NonFiniteStop {
				// Which batches overflow depends on the data (a dead ReLU
				// layer gives a zero, finite, gradient): at least one.
				named := regexp.MustCompile(`gradient of step \d+ was not finite \(NaN or ±Inf\) on w-\d(, w-\d)*;`)
				if err == nil || !named.MatchString(err.Error()) {
					t.Fatalf("got %v, want the job to fail naming the step and the workers", err)
				}
				for i, e := range werrs {
					if e == nil || !strings.Contains(e.Error(), "not finite") {
						t.Fatalf("worker %d: %v, want the coordinator's reason", i, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.SkippedSteps == 0 || sum.SkippedSteps >= 12 {
				t.Fatalf("%d steps skipped of 12, want some but not all", sum.SkippedSteps)
			}
		})
	}
}

// TestRingFailureBudget gives one worker an address nobody listens on: every
// ring fails before its first step, and after three the job gives up,
// listing each ring's cause.
func TestRingFailureBudget(t *testing.T) {
	// Parallel: it mostly waits for rings to fail.
	t.Parallel()
	const deadAddr = "127.0.0.1:1" // a privileged port nobody listens on here
	cfg := testConfig(t, 2)
	cfg.MaxSteps = 10
	start := time.Now()
	_, err, _ := runJobWith(t, cfg, func(wc *worker.Config) {
		if wc.ID == "w-1" {
			wc.Advertise = deadAddr
		}
	}, workerIDs(2)...)
	if err == nil || !strings.Contains(err.Error(), "3 rings in a row failed before completing a step") {
		t.Fatalf("got %v, want the failure budget spent", err)
	}
	for _, ring := range []string{"ring 1: ", "ring 2: ", "ring 3: "} {
		if !strings.Contains(err.Error(), ring) {
			t.Fatalf("%v does not list %q's cause", err, ring)
		}
	}
	if !strings.Contains(err.Error(), deadAddr) {
		t.Fatalf("%v does not name the unreachable address %s", err, deadAddr)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("giving up took %v", d)
	}
	t.Log(err)
}
