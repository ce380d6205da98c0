package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"ringtrain/internal/bench"
)

// Bench runs the benchmark suite with args and returns the exit status.
func Bench(args []string) int {
	fs := flag.NewFlagSet("ringbench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "tiny sizes and few steps: checks the suite works, measures nothing")
	out := fs.String("out", "bench-out", "folder for results.jsonl, report.md and the plots")
	suites := fs.String("suites", "allreduce,weak,strong,tta", "suites to run (also: netsim, the simulated network, which needs root; netsim-compression, the 784-512-512-10 model's steps on it with -compression none, fp16 and bf16; netsim-overlap, the Keras example's and 784-512-512-10's steps on it without overlap, with it, and with it and fp16)")
	workers := fs.String("workers", "", "worker counts of the training suites (default 1,2,4,8; quick 1,2)")
	arWorkers := fs.String("allreduce-workers", "", "process counts of the all-reduce sweep (default 2,4,8; quick 2)")
	peer := fs.String("peer", "auto", "auto, off, or the Python interpreter that runs the PyTorch peer")
	scripts := fs.String("scripts", "bench", "folder of the PyTorch peer scripts")
	kinds := fs.String("allreduce-kinds", "", "also sweep these kinds over the default data plane: float32, fp16, bf16 (16-bit compressed float32, with error feedback), each reducing a size's bytes/8 values")
	profiles := fs.String("cpuprofile-dir", "", "write a CPU profile of rank 0 of every all-reduce sweep into this folder")
	replot := fs.String("replot", "", "measure nothing: draw the plots of the run in this folder again from its results.jsonl")
	fs.Usage = usage(fs, "ringbench [-quick] [-out DIR] [flags]")
	if status, ok := parseCommand(fs, "ringbench", args); !ok {
		return status
	}
	cfg := bench.DefaultConfig()
	if *quick {
		cfg = bench.QuickConfig()
	}
	if *replot != "" {
		files, err := bench.Replot(*replot, cfg.Target)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ringbench:", err)
			return 1
		}
		fmt.Println("wrote", strings.Join(files, ", "))
		return 0
	}
	cfg.Out, cfg.Suites, cfg.Peer, cfg.Scripts, cfg.ProfileDir = *out, strings.Split(*suites, ","), *peer, *scripts, *profiles
	if *kinds != "" {
		cfg.Kinds = strings.Split(*kinds, ",")
		for _, k := range cfg.Kinds {
			if k != "float32" && k != "fp16" && k != "bf16" {
				fmt.Fprintf(os.Stderr, "ringbench: -allreduce-kinds: %q: want float32, fp16 or bf16\n", k)
				return 2
			}
		}
	}
	var err error
	if *workers != "" {
		if cfg.Workers, err = ints(*workers); err != nil {
			fmt.Fprintln(os.Stderr, "ringbench: -workers:", err)
			return 2
		}
	}
	if *arWorkers != "" {
		if cfg.AllreduceWorkers, err = ints(*arWorkers); err != nil {
			fmt.Fprintln(os.Stderr, "ringbench: -allreduce-workers:", err)
			return 2
		}
	}
	if cfg.Exe, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "ringbench:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ringbench:", err)
		return 1
	}
	return 0
}

// BenchHelper runs one of ringbench's helper processes.
func BenchHelper(name string, args []string) int {
	run := bench.RankMain
	switch name {
	case "tcp-sink":
		run = bench.TCPSinkMain
	case "netsim-coordinator":
		run = bench.NetsimCoordinatorMain
	case "netsim-worker":
		run = bench.NetsimWorkerMain
	}
	if err := run(args); err != nil {
		fmt.Fprintf(os.Stderr, "ringbench %s: %v\n", name, err)
		return 1
	}
	return 0
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
