package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"ringtrain/internal/worker"
)

// workerFlags defines the worker's flags on cfg; join holds the seeds as
// given.
func workerFlags(cfg *worker.Config) (fs *flag.FlagSet, join *string, logs *logOptions) {
	fs = flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.StringVar(&cfg.Coordinator, "coordinator", "", "coordinator address, HOST:PORT (or find it through -join)")
	join = fs.String("join", "", "gossip seeds, comma-separated HOST[:PORT] (a DNS name is resolved to all its addresses)")
	fs.StringVar(&cfg.GossipListen, "gossip-listen", cfg.GossipListen, "memberlist address, HOST:PORT")
	fs.StringVar(&cfg.GossipAdvertise, "gossip-advertise", "", "memberlist address the others reach this worker at")
	fs.DurationVar(&cfg.ProbeInterval, "probe-interval", 0, "failure detection: probe a member this often (0: 1s)")
	fs.DurationVar(&cfg.ProbeTimeout, "probe-timeout", 0, "failure detection: a probe's time limit (0: 500ms)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", cfg.MetricsListen, "address of the Prometheus /metrics endpoint (- or empty: none)")
	fs.Var(&cfg.MemoryLimit, "memory-limit", "memory this worker may use, e.g. 8GiB; an assignment estimated to need more is refused before training (default: the machine's memory or its cgroup's limit)")
	fs.DurationVar(&cfg.ReconnectTimeout, "reconnect-timeout", cfg.ReconnectTimeout, "how long to keep trying to reach a lost coordinator")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address of this worker's ring service, HOST:PORT (port 0: any free port)")
	fs.StringVar(&cfg.DataPlane, "data-plane", "tcp", "what carries the all-reduce's frames: tcp (a TCP connection per neighbour on the -listen port) or grpc; every worker of a job must use the same")
	fs.BoolVar(&cfg.SharedMemory, "shared-memory", cfg.SharedMemory, "with the tcp data plane, exchange frames with a neighbour on this host through shared memory (/dev/shm) rather than loopback TCP; a neighbour elsewhere stays on TCP")
	fs.StringVar(&cfg.Advertise, "advertise", "", "address other workers dial to reach this one (default: the listen address, or this machine's address toward the coordinator)")
	fs.StringVar(&cfg.ID, "id", cfg.ID, "unique name of this worker in the job")
	fs.DurationVar(&cfg.JoinTimeout, "join-timeout", cfg.JoinTimeout, "how long to wait for the coordinator and for the ring to form")
	securityFlags(fs, &cfg.Security, &cfg.HealthListen)
	return fs, join, logFlags(fs)
}

// Worker runs the worker command with args (without the program name) and
// returns its exit status.
func Worker(args []string) int {
	cfg := worker.DefaultConfig()
	fs, join, logs := workerFlags(&cfg)
	fs.Usage = usage(fs, "worker -coordinator HOST:PORT [flags]")
	if status, ok := parseCommand(fs, "worker", args); !ok {
		return status
	}
	log, _, err := newLogger(os.Stderr, logs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	cfg.Logger = log
	// Default addresses whose port is taken (the coordinator or another
	// worker on this machine) move to a free port; the user's do not.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	cfg.Movable = worker.Movable{Listen: !given["listen"], Gossip: !given["gossip-listen"], Metrics: !given["metrics-listen"]}
	if *join != "" {
		cfg.Join = strings.Split(*join, ",")
	}
	// SIGTERM drains: the worker leaves at the next step boundary. SIGINT
	// stops it at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	drain, stopTerm := onSIGTERM(func() { log.Info("SIGTERM: leaving (from a ring, at the next step boundary)") })
	defer stopTerm()
	cfg.Drain = drain
	err = worker.Run(ctx, cfg)
	if err != nil && ctx.Err() != nil {
		log.Info("interrupted")
		return 130
	}
	if err != nil {
		log.Error("worker failed", "err", err)
		fmt.Fprintln(os.Stderr, "worker:", errorLine(err, cfg.ID))
		return 1
	}
	return 0
}

// errorLine is a worker's error as its last line says it, after "worker:":
// without the package's prefix or the worker's name, which the line and
// the process already give.
func errorLine(err error, id string) string {
	msg := strings.TrimPrefix(err.Error(), "worker: ")
	return strings.TrimPrefix(msg, "worker "+id+": ")
}
