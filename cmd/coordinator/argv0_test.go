package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCalledAsWorkerRunsTheWorker runs the coordinator binary through a
// link named worker, as the container image's /usr/local/bin/worker: -h
// prints the worker's usage and exits 0.
func TestCalledAsWorkerRunsTheWorker(t *testing.T) {
	link := filepath.Join(t.TempDir(), "worker")
	if err := os.Symlink(binary, link); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(link, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("worker -h: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "usage: worker ") || !strings.Contains(string(out), "-coordinator") {
		t.Fatalf("worker -h printed:\n%s", out)
	}
}
