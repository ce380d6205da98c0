package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/compose"
	"ringtrain/internal/coordinator"
	"ringtrain/internal/localworkers"
	"ringtrain/internal/netsim"
	"ringtrain/internal/ringtcp"
)

// The netsim suite runs every worker in a network namespace of its own,
// joined to the others through a bridge by links shaped with tc (package
// netsim), and measures the all-reduce and training steps there against
// loopback at the same worker count, so that the contention for the cores
// cancels out. It needs root; without it the suite says it skipped.

// netsimRates are the simulated links, in bits per second.
var netsimRates = []int64{1e9, 10e9}

// mlp512 is the 784-512-512-10 model.
var mlp512 = benchModel{name: "mlp512", hidden: []int{512, 512}}

// netsimSizes are the all-reduce sizes measured on shaped links.
var netsimSizes = []int{4 << 10, 256 << 10, 4 << 20, 16 << 20}

func (r *runner) netsim(ctx context.Context) error {
	if err := netsim.Check(); err != nil {
		r.logf("netsim: skipped: %v", err)
		return r.add(Record{Suite: "netsim", Note: "skipped: " + err.Error()})
	}
	if err := os.WriteFile(r.modelPath(mlp512), mlp512.spec().JSON(), 0o644); err != nil {
		return err
	}
	for _, n := range r.cfg.AllreduceWorkers {
		for _, rate := range netsimRates {
			if err := r.netsimAllreduce(ctx, n, rate); err != nil {
				return fmt.Errorf("all-reduce, %d ranks at %s: %w", n, gbps(rate), err)
			}
		}
	}
	for _, m := range []benchModel{kerasModel, mlp512} {
		for _, n := range r.cfg.AllreduceWorkers {
			if err := r.netsimTrainAll(ctx, trainRun{model: m, workers: n, perWorkerBatch: 32, steps: r.netsimSteps(m)}); err != nil {
				return err
			}
		}
	}
	return r.netsimModel("netsim-train", "ringtrain")
}

// netsimRounds is how many times every training configuration runs, the
// links interleaved; the run with the median step time is kept.
const netsimRounds = 3

// netsimTrainAll runs tr on loopback and on every simulated link,
// netsimRounds times interleaved, and records the median run of each. The
// loopback runs keep their frames on TCP, as over the links: shared
// memory would compare another data plane, not the link.
func (r *runner) netsimTrainAll(ctx context.Context, tr trainRun) error {
	links := append([]int64{0}, netsimRates...)
	runs := make([][]*coordinator.Summary, len(links))
	rounds := netsimRounds
	if r.cfg.Quick {
		rounds = 1
	}
	for round := 0; round < rounds; round++ {
		for i, rate := range links {
			var sum *coordinator.Summary
			var err error
			if rate == 0 {
				loopback := tr
				loopback.tcpOnly = true
				sum, err = r.ringtrain(ctx, loopback)
			} else {
				sum, err = r.netsimTrain(ctx, tr, rate)
			}
			if err != nil {
				return fmt.Errorf("%s, %d workers, link %d b/s: %w", tr.model.name, tr.workers, rate, err)
			}
			runs[i] = append(runs[i], sum)
		}
	}
	for i, rate := range links {
		step := func(s *coordinator.Summary) float64 {
			return s.StepMillis.Compute + s.StepMillis.Allreduce + s.StepMillis.Optimizer
		}
		slices.SortFunc(runs[i], func(a, b *coordinator.Summary) int { return cmp.Compare(step(a), step(b)) })
		if err := r.addNetsimTrain(tr, rate, runs[i][len(runs[i])/2]); err != nil {
			return err
		}
	}
	return nil
}

func gbps(rate int64) string { return fmt.Sprintf("%g Gb/s", float64(rate)/1e9) }

func (r *runner) netsimSteps(m benchModel) int {
	switch {
	case r.cfg.Quick:
		return 5
	case m.name == kerasModel.name:
		return 200
	}
	return 40
}

func (r *runner) addNetsimTrain(tr trainRun, rate int64, sum *coordinator.Summary) error {
	link := "loopback"
	if rate > 0 {
		link = gbps(rate)
	}
	rec := Record{Suite: "netsim-train", Impl: "ringtrain", Model: tr.model.name, Workers: tr.workers, PerWorkerBatch: tr.perWorkerBatch,
		GlobalBatch: sum.GlobalBatch, Steps: sum.Steps, SamplesPerSecond: sum.SamplesPerSecond, LinkBits: rate,
		StepMillis: &StepSplit{sum.StepMillis.Compute, sum.StepMillis.Allreduce, sum.StepMillis.Optimizer}, Note: r.note(tr.workers)}
	if tr.suite != "" {
		rec.Suite = tr.suite
	}
	if tr.noOverlap {
		rec.Impl += "-nooverlap"
	}
	if tr.compression != "" {
		rec.Impl += "-" + tr.compression
	}
	s := rec.StepMillis
	r.logf("%s %s %s N=%d %s: step %.2f ms (compute %.2f, all-reduce %.2f, optimizer %.2f)",
		rec.Suite, rec.Impl, tr.model.name, tr.workers, link, s.Compute+s.Allreduce+s.Optimizer, s.Compute, s.Allreduce, s.Optimizer)
	return r.add(rec)
}

// netsimAllreduce times the all-reduce on n namespaces joined by links of
// the given rate, every rank a goroutine of this process whose sockets
// live in its namespace.
func (r *runner) netsimAllreduce(ctx context.Context, n int, rate int64) error {
	nw, err := netsim.Build(ctx, netsim.Config{Nodes: n, RateBits: rate})
	if err != nil {
		return err
	}
	defer nw.Close()
	svcs := make([]*ringtcp.Service, n)
	addrs := make([]string, n)
	for i := range svcs {
		lis, err := nw.Listen(i, nw.Nodes[i].IP+":0")
		if err != nil {
			return err
		}
		svcs[i], _ = ringtcp.Listen(lis, ringtcp.ServiceConfig{})
		defer svcs[i].Close()
		addrs[i] = lis.Addr().String()
	}
	ts := make([]allreduce.Transport, n)
	err = eachRank(n, func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		t, err := ringtcp.Connect(cctx, svcs[i], ringtcp.Config{JobID: "netsim", Generation: 1, Rank: i, Addrs: addrs,
			Dial: func(ctx context.Context, addr string) (net.Conn, error) { return nw.Dial(ctx, i, addr) }})
		ts[i] = t
		return err
	})
	defer func() {
		for _, t := range ts {
			if t != nil {
				t.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	rings := make([]*allreduce.Ring, n)
	for i := range rings {
		rings[i] = allreduce.New(ts[i], allreduce.DefaultConfig())
	}
	step := uint64(0)
	for _, size := range netsimSizes {
		vecs := make([][]float64, n)
		for i := range vecs {
			vecs[i] = make([]float64, size/8)
		}
		// About a second of traffic at the link's rate, at least 3.
		iters := max(3, min(50, int(float64(rate)/8/float64(2*size))))
		if r.cfg.Quick {
			iters = 2
		}
		var samples []float64
		for rep := 0; rep < 3; rep++ {
			start := time.Now()
			err := eachRank(n, func(i int) error {
				for k := 0; k < iters; k++ {
					cctx, cancel := context.WithTimeout(ctx, time.Minute)
					err := rings[i].AllReduce(cctx, step+uint64(k), vecs[i], allreduce.Average)
					cancel()
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			step += uint64(iters)
			samples = append(samples, time.Since(start).Seconds()/float64(iters))
		}
		rec := sweepRecord("ringtrain", n, size, median(samples), r.note(n))
		rec.Suite, rec.LinkBits = "netsim-allreduce", rate
		if err := r.add(rec); err != nil {
			return err
		}
		r.logf("netsim all-reduce N=%d %s %d B: %.3f ms, busbw %.3f GB/s", n, gbps(rate), size, rec.Seconds*1e3, rec.BusBWGBps)
	}
	return nil
}

// eachRank runs f for every rank concurrently and returns the first error.
func eachRank(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("rank %d: %w", i, err)
		}
	}
	return nil
}

// netsimTrain runs a training job whose workers each run in a namespace of
// their own: the coordinator runs in the bridge's namespace (ringbench
// netsim-coordinator), and starts its workers through ringbench
// netsim-worker, which moves each into its node.
func (r *runner) netsimTrain(ctx context.Context, tr trainRun, rate int64) (*coordinator.Summary, error) {
	nw, err := netsim.Build(ctx, netsim.Config{Nodes: tr.workers, RateBits: rate})
	if err != nil {
		return nil, err
	}
	defer nw.Close()
	var nodes []string
	for _, node := range nw.Nodes {
		nodes = append(nodes, node.NS+"="+node.IP)
	}
	cmd := nw.CommandIn(ctx, nw.Switch, r.cfg.Exe, "netsim-coordinator", "-model", r.modelPath(tr.model),
		"-workers", fmt.Sprint(tr.workers), "-batch", fmt.Sprint(tr.perWorkerBatch), "-steps", fmt.Sprint(tr.steps),
		"-listen", nw.SwitchIP, "-nodes", strings.Join(nodes, ","), "-exe", r.cfg.Exe, "-compression", tr.compression,
		"-bucket-bytes", fmt.Sprint(tr.bucketBytes()), "-worker-log", filepath.Join(r.cfg.Out, "workers.log"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	var sum coordinator.Summary
	if err := json.Unmarshal(out, &sum); err != nil {
		return nil, fmt.Errorf("netsim-coordinator printed %q: %w", out, err)
	}
	return &sum, nil
}

// NetsimCoordinatorMain is ringbench netsim-coordinator: it runs a job
// whose coordinator listens on -listen and whose local workers start in
// the namespaces -nodes names, and prints the job's summary as JSON.
func NetsimCoordinatorMain(args []string) error {
	fs := flag.NewFlagSet("netsim-coordinator", flag.ContinueOnError)
	model := fs.String("model", "", "model description")
	workers := fs.Int("workers", 2, "workers")
	batch := fs.Int("batch", 32, "per-worker batch")
	steps := fs.Int("steps", 100, "steps")
	listen := fs.String("listen", "", "the coordinator's address (the bridge's)")
	nodes := fs.String("nodes", "", "namespace=ip of every node, by worker index")
	exe := fs.String("exe", "", "the ringbench executable")
	workerLog := fs.String("worker-log", "", "file the workers' output is appended to")
	compression := fs.String("compression", "", "the job's gradient compression")
	bucketBytes := fs.Int("bucket-bytes", coordinator.DefaultBucketBytes, "the job's gradient bucket size (0: no overlap)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := coordinator.DefaultConfig()
	cfg.LocalWorkers, cfg.Batch, cfg.MaxSteps, cfg.Epochs = *workers, *batch, *steps, 1<<20
	cfg.Compression, cfg.BucketBytes = *compression, *bucketBytes
	cfg.WarmupEpochs = 1
	cfg.Listen, cfg.GossipListen, cfg.MetricsListen = *listen+":0", *listen+":0", "-"
	cfg.Checkpoint, cfg.Summary, cfg.Progress = "", "", nil
	in := compose.Inputs{Model: *model, Workers: localworkers.Config{Command: []string{*exe, "netsim-worker", "-nodes", *nodes, "--"}}}
	if *workerLog != "" {
		f, err := os.OpenFile(*workerLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		in.Workers.Output = f
	}
	cfg, err := in.Job(cfg)
	if err != nil {
		return err
	}
	sum, err := coordinator.Run(context.Background(), cfg)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(sum)
}

// NetsimWorkerMain is ringbench netsim-worker: it finds the worker's index
// in its "-id local-I" argument, replaces the loopback listening addresses
// the coordinator gave it with its node's, and runs the worker inside the
// node's namespace.
func NetsimWorkerMain(args []string) error {
	fs := flag.NewFlagSet("netsim-worker", flag.ContinueOnError)
	nodes := fs.String("nodes", "", "namespace=ip of every node, by worker index")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out, err := netsimWorkerCommand(*nodes, os.Args[0], fs.Args())
	if err != nil {
		return err
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return err
	}
	return syscall.Exec(ipPath, out, os.Environ())
}

// netsimWorkerCommand is the command line that runs the worker whose
// coordinator-given arguments are args inside its node: exe worker args,
// run by ip netns exec, with the loopback listening addresses replaced by
// the node's and shared memory off.
func netsimWorkerCommand(nodes, exe string, args []string) ([]string, error) {
	var ns, ip string
	for i := 0; i+1 < len(args); i++ {
		if args[i] != "-id" {
			continue
		}
		var idx int
		if _, err := fmt.Sscanf(args[i+1], "local-%d", &idx); err != nil {
			return nil, fmt.Errorf("worker id %q: %w", args[i+1], err)
		}
		list := strings.Split(nodes, ",")
		if idx < 0 || idx >= len(list) {
			return nil, fmt.Errorf("worker %d of %d nodes", idx, len(list))
		}
		ns, ip, _ = strings.Cut(list[idx], "=")
	}
	if ns == "" || ip == "" {
		return nil, fmt.Errorf("no -id local-I with a node among %q", args)
	}
	// Namespaces share /dev/shm: without -shared-memory=false the frames
	// would not cross the shaped links.
	out := []string{"ip", "netns", "exec", ns, exe, "worker", "-shared-memory=false"}
	for i := 0; i < len(args); i++ {
		out = append(out, args[i])
		if (args[i] == "-listen" || args[i] == "-gossip-listen") && i+1 < len(args) {
			out = append(out, ip+":0")
			i++
		}
	}
	return out, nil
}
