// Command ringbench runs the scaling-efficiency benchmark suite and writes
// results.jsonl, report.md and PNG plots into -out:
//
//	go run ./cmd/ringbench -out bench-out           the full suite
//	go run ./cmd/ringbench -quick -out /tmp/q       seconds of tiny sizes
//
// It also serves as its own helper processes (allreduce-rank, tcp-sink,
// netsim-coordinator, netsim-worker) and
// local workers (worker).
package main

import (
	"os"

	"ringtrain/internal/cli"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "worker":
			os.Exit(cli.Worker(args[1:]))
		case "allreduce-rank", "tcp-sink", "netsim-coordinator", "netsim-worker":
			os.Exit(cli.BenchHelper(args[0], args[1:]))
		}
	}
	os.Exit(cli.Bench(args))
}
