package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ringtrain/internal/mnist/mnisttest"
	"ringtrain/internal/testmain"
)

// binary is the coordinator built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ringtrain-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "coordinator")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	testmain.RunWithCleanup(m, func() { os.RemoveAll(dir) })
}

// job is a coordinator process with its log lines.
type job struct {
	cmd   *exec.Cmd
	lines chan string
	all   []string
	pids  map[string]int // local worker name → pid
}

func startJob(t *testing.T, args ...string) *job {
	t.Helper()
	return startJobEnv(t, nil, args...)
}

// startJobEnv is startJob with env added to the coordinator's environment,
// which its local workers inherit.
func startJobEnv(t *testing.T, env []string, args ...string) *job {
	t.Helper()
	cmd := exec.Command(binary, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	j := &job{cmd: cmd, lines: make(chan string, 1<<16), pids: map[string]int{}}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			j.lines <- sc.Text()
		}
		close(j.lines)
	}()
	return j
}

// waitFor reads log lines until one contains s, recording worker pids.
func (j *job) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-j.lines:
			if !ok {
				t.Fatalf("coordinator exited before logging %q:\n%s", s, strings.Join(j.all, "\n"))
			}
			j.record(line)
			if strings.Contains(line, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %v:\n%s", s, timeout, strings.Join(j.all, "\n"))
		}
	}
}

func (j *job) record(line string) {
	j.all = append(j.all, line)
	var e struct {
		Msg, Worker string
		PID         int
	}
	if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "started local worker" {
		j.pids[e.Worker] = e.PID
	}
}

// wait waits for the coordinator to exit and drains its log.
func (j *job) wait(t *testing.T, timeout time.Duration) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- j.cmd.Wait() }()
	select {
	case err := <-done:
		for line := range j.lines {
			j.record(line)
		}
		return err, time.Since(start)
	case <-time.After(timeout):
		j.cmd.Process.Kill()
		t.Fatalf("coordinator still running after %v:\n%s", timeout, strings.Join(j.all, "\n"))
		return nil, 0
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// subset writes, once, the first chaosTrain training and chaosTest test
// images of MNIST as IDX files, for the jobs whose checks do not need the
// whole set: a coordinator loads them in a moment.
var subset = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp(filepath.Dir(binary), "mnist-subset")
	if err != nil {
		return "", err
	}
	return dir, mnisttest.WriteSubset(dir, chaosTrain, chaosTest)
})

// smallData returns the folder subset writes.
func smallData(t *testing.T) string {
	t.Helper()
	dir, err := subset()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLocalProcessesTrain runs the coordinator with three worker processes
// over real gRPC on loopback for one epoch at per-worker batch 32: test
// accuracy at least 0.85 (PyTorch DDP reaches 0.88–0.89), every child gone
// at the end.
func TestLocalProcessesTrain(t *testing.T) {
	t.Parallel() // its processes mostly wait on each other; it asserts no duration
	summary := filepath.Join(t.TempDir(), "summary.json")
	j := startJob(t, "-local-workers", "3", "-batch", "32", "-epochs", "1", "-summary", summary, "-checkpoint", "")
	err, _ := j.wait(t, 3*time.Minute)
	if err != nil {
		t.Fatalf("coordinator: %v\n%s", err, strings.Join(j.all, "\n"))
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Workers, GlobalBatch, Steps int
		TestAccuracy                float64 `json:"test_accuracy"`
		ReplicaChecks               int     `json:"replica_checks"`
		WeightsSHA256               string  `json:"weights_sha256"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary: %s", data)
	if s.Workers != 3 || s.Steps != 60000/96 || s.TestAccuracy < 0.85 || s.ReplicaChecks == 0 || len(s.WeightsSHA256) != 64 {
		t.Fatalf("summary %+v: want 3 workers, 625 steps, accuracy ≥ 0.85, replica checks and a weights hash", s)
	}
	if len(j.pids) != 3 {
		t.Fatalf("logged %d worker pids, want 3", len(j.pids))
	}
	for name, pid := range j.pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) outlived the coordinator", name, pid)
		}
	}
}

// TestInterruptCleansUp sends SIGINT to the coordinator during training: it
// must exit with a failure and leave no worker process behind.
func TestInterruptCleansUp(t *testing.T) {
	t.Parallel() // its processes mostly wait on each other
	j := startJob(t, "-local-workers", "2", "-epochs", "500", "-data", smallData(t), "-checkpoint", "", "-summary", "")
	j.waitFor(t, "epoch 1/500 step", 2*time.Minute)
	if err := j.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err, took := j.wait(t, 30*time.Second)
	if err == nil {
		t.Fatal("an interrupted job exited with status 0")
	}
	if len(j.pids) != 2 {
		t.Fatalf("logged %d worker pids, want 2", len(j.pids))
	}
	for name, pid := range j.pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) outlived the interrupted coordinator", name, pid)
		}
	}
	t.Logf("exited %v after SIGINT", took.Round(time.Millisecond))
}

// TestDeterministicWeightsIndependentOfWorkers trains 100 deterministic steps
// at global batch 96 (on the MNIST subset) on 1, 2, 3, 4 and 8 worker
// processes, and 2 again: the weights_sha256 of every summary is the same.
// The jobs run in parallel (two at a time at GOMAXPROCS 2): their starts
// overlap.
func TestDeterministicWeightsIndependentOfWorkers(t *testing.T) {
	t.Parallel() // its jobs mostly wait on each other; it asserts no duration
	counts := []int{1, 2, 3, 4, 8, 2}
	sums := make([]string, len(counts))
	t.Run("jobs", func(t *testing.T) {
		for i, n := range counts {
			t.Run(fmt.Sprintf("%d-workers", n), func(t *testing.T) {
				t.Parallel()
				summary := filepath.Join(t.TempDir(), "summary.json")
				j := startJob(t, "-local-workers", fmt.Sprint(n), "-batch", fmt.Sprint(96/n), "-max-steps", "100", "-seed", "11",
					"-deterministic", "-data", smallData(t), "-summary", summary, "-checkpoint", "")
				if err, _ := j.wait(t, 3*time.Minute); err != nil {
					t.Fatalf("%d workers: %v\n%s", n, err, strings.Join(j.all, "\n"))
				}
				data, err := os.ReadFile(summary)
				if err != nil {
					t.Fatal(err)
				}
				var s struct {
					Steps         int
					WeightsSHA256 string `json:"weights_sha256"`
					MicroBatch    int    `json:"micro_batch"`
				}
				if err := json.Unmarshal(data, &s); err != nil {
					t.Fatal(err)
				}
				if s.Steps != 100 || s.MicroBatch != 4 {
					t.Fatalf("%d workers: %d steps with micro-batch %d, want 100 and 4", n, s.Steps, s.MicroBatch)
				}
				t.Logf("%d workers: weights_sha256 %s", n, s.WeightsSHA256)
				sums[i] = s.WeightsSHA256
			})
		}
	})
	if t.Failed() {
		return
	}
	hashes := map[string]int{}
	for _, h := range sums {
		hashes[h]++
	}
	if len(hashes) != 1 {
		t.Fatalf("%d different final weights across worker counts: %v", len(hashes), hashes)
	}
}
