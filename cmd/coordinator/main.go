// Command coordinator runs a ringtrain job: it shards MNIST across workers,
// which train one model with a ring all-reduce, and reports progress, test
// accuracy and a JSON summary.
//
//	coordinator -local-workers 4             train on 4 local worker processes
//	coordinator -workers 8 -listen :7070     wait for 8 remote workers
//	coordinator predict -checkpoint FILE     evaluate a checkpoint, show predictions
//	coordinator worker -coordinator ADDR     run a worker (as cmd/worker does)
//	coordinator certs -out DIR               write development TLS credentials
//	coordinator prune -checkpoint FILE       prune a trained model, fine-tune, save
//	coordinator cv -folds K                  k-fold cross-validation
//
// Called as "worker" (a link to it, as in the container image), it is the
// worker command: worker -coordinator ADDR.
package main

import (
	"os"
	"path/filepath"

	"ringtrain/internal/cli"
)

func main() {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "worker" {
		os.Exit(cli.Worker(args))
	}
	if len(args) > 0 {
		switch args[0] {
		case "predict":
			os.Exit(cli.Predict(args[1:]))
		case "worker":
			os.Exit(cli.Worker(args[1:]))
		case "certs":
			os.Exit(cli.Certs(args[1:]))
		case "prune":
			os.Exit(cli.Prune(args[1:]))
		case "cv":
			os.Exit(cli.CV(args[1:]))
		}
	}
	os.Exit(cli.Coordinator(args))
}
