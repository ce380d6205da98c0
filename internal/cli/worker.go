package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"ringtrain/internal/worker"
)

// Worker runs the worker command with args (without the program name) and
// returns its exit status.
func Worker(args []string) int {
	cfg := worker.DefaultConfig()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.StringVar(&cfg.Coordinator, "coordinator", "", "coordinator address, HOST:PORT (required)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address of this worker's ring service, HOST:PORT")
	fs.StringVar(&cfg.Advertise, "advertise", "", "address other workers dial to reach this one (default: the listen address, or this machine's address toward the coordinator)")
	fs.StringVar(&cfg.ID, "id", cfg.ID, "unique name of this worker in the job")
	fs.DurationVar(&cfg.JoinTimeout, "join-timeout", cfg.JoinTimeout, "how long to wait for the coordinator and for the ring to form")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = usage(fs, "worker -coordinator HOST:PORT [flags]")
	if err := parse(fs, args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	log, err := newLogger(os.Stderr, *level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	cfg.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := worker.Run(ctx, cfg); err != nil {
		log.Error("worker failed", "err", err)
		fmt.Fprintln(os.Stderr, "worker:", strings.TrimPrefix(err.Error(), "worker: "))
		return 1
	}
	return 0
}
