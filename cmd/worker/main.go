// Command worker is a ringtrain training worker. It joins the coordinator at
// -coordinator, serves its ring service at -listen and trains until the job
// ends.
package main

import (
	"os"

	"ringtrain/internal/cli"
)

func main() { os.Exit(cli.Worker(os.Args[1:])) }
