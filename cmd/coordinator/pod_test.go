package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"ringtrain/internal/nn"
)

// health asks a process's gRPC health service for its status.
func health(addr string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return 0, err
	}
	return resp.Status, nil
}

// scrape returns a process's /metrics page, or "" while it cannot be
// reached.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitUntil polls cond every few milliseconds until it holds.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// podWorker starts a worker configured the way the StatefulSet configures
// one: environment variables only, its name and address from the downward
// API, the cluster found through a DNS name (localhost, resolving to
// loopback) rather than the coordinator's address.
func podWorker(t *testing.T, name, gossipSeed string) (cmd *exec.Cmd, ringAddr, metricsAddr string) {
	t.Helper()
	ringAddr, metricsAddr = freeAddr(t, "tcp"), freeAddr(t, "tcp")
	gossip := freeAddr(t, "udp")
	cmd = exec.Command(binary, "worker")
	cmd.Env = append(os.Environ(),
		"POD_NAME="+name, "POD_IP=127.0.0.1",
		"RINGTRAIN_ID="+name,
		"RINGTRAIN_LISTEN="+ringAddr, "RINGTRAIN_ADVERTISE="+ringAddr,
		"RINGTRAIN_GOSSIP_LISTEN="+gossip, "RINGTRAIN_GOSSIP_ADVERTISE="+gossip,
		"RINGTRAIN_METRICS_LISTEN="+metricsAddr,
		"RINGTRAIN_JOIN="+gossipSeed)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, ringAddr, metricsAddr
}

// TestPodEnvironment runs a short job the way Kubernetes runs it: remote
// workers configured by environment variables that find the coordinator
// through gossip seeded by a DNS name. Both binaries answer gRPC health
// checks (SERVING, and NOT_SERVING while a worker drains after SIGTERM) and
// serve /metrics with the named metrics.
func TestPodEnvironment(t *testing.T) {
	t.Parallel() // its processes mostly wait on each other
	dir := t.TempDir()
	// A model slow enough per step that a drain takes a visible while.
	spec := nn.KerasMNIST()
	spec.Layers[0].Units, spec.Layers[1].Units = 512, 512
	model := filepath.Join(dir, "model.json")
	if err := os.WriteFile(model, spec.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	summary := filepath.Join(dir, "summary.json")
	j := startJob(t, "-workers", "2", "-listen", "127.0.0.1:0", "-gossip-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0",
		"-model", model, "-batch", "128", "-max-steps", "60", "-hash-every", "5", "-data", smallData(t), "-summary", summary, "-checkpoint", "")
	grpcAddr, gossip := j.listening(t)
	metricsAddr := j.metricsAddrs()["coordinator"]
	if metricsAddr == "" {
		t.Fatalf("the coordinator logged no metrics address:\n%s", strings.Join(j.all, "\n"))
	}
	waitUntil(t, "the coordinator's health", time.Minute, func() bool {
		st, err := health(grpcAddr)
		return err == nil && st == healthpb.HealthCheckResponse_SERVING
	})
	_, port, _ := strings.Cut(gossip, ":")
	seed := "localhost:" + port
	_, ring0, metrics0 := podWorker(t, "ringtrain-worker-0", seed)
	leaver, ring1, _ := podWorker(t, "ringtrain-worker-1", seed)
	waitUntil(t, "training", 2*time.Minute, func() bool {
		return strings.Contains(scrape(t, metricsAddr), "ringtrain_membership_size 2")
	})
	for _, w := range []string{ring0, ring1} {
		if st, err := health(w); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("worker %s health %v, %v; want SERVING", w, st, err)
		}
	}
	waitUntil(t, "a step on worker 0", time.Minute, func() bool {
		page := scrape(t, metrics0)
		return page != "" && !strings.Contains(page, "ringtrain_steps_total 0")
	})
	page := scrape(t, metrics0)
	for _, m := range []string{"ringtrain_steps_total", "ringtrain_loss", "ringtrain_samples_per_second", "ringtrain_allreduce_seconds_bucket",
		"ringtrain_allreduce_bytes_total", "ringtrain_membership_size 2", "ringtrain_rollbacks_total 0"} {
		if !strings.Contains(page, m) {
			t.Errorf("worker /metrics lacks %q", m)
		}
	}
	// Drain worker 1: NOT_SERVING while it finishes its step and leaves.
	if err := leaver.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sawDraining := false
	waitUntil(t, "worker 1 to drain and exit", time.Minute, func() bool {
		st, err := health(ring1)
		if err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING {
			sawDraining = true
		}
		return err != nil
	})
	if err := leaver.Wait(); err != nil {
		t.Fatalf("the drained worker exited with %v, want 0", err)
	}
	if !sawDraining {
		t.Error("the draining worker never reported NOT_SERVING")
	}
	if err, _ := j.wait(t, 5*time.Minute); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, strings.Join(j.all, "\n"))
	}
	var s struct {
		Steps   int
		Workers int
	}
	data, _ := os.ReadFile(summary)
	if err := json.Unmarshal(data, &s); err != nil || s.Steps != 60 || s.Workers != 1 {
		t.Fatalf("summary %s: want 60 steps finished by the remaining worker", data)
	}
}

// TestCoordinatorMetricsAndShutdown scrapes the coordinator's /metrics
// during a job, then shuts it down with SIGTERM: it pauses the ring,
// writes a checkpoint, turns NOT_SERVING and exits with status 3 (not
// done), leaving the workers waiting for its return.
func TestCoordinatorMetricsAndShutdown(t *testing.T) {
	t.Parallel() // its processes mostly wait on each other
	dir := t.TempDir()
	j := startJob(t, "-workers", "2", "-listen", "127.0.0.1:0", "-gossip-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0",
		"-epochs", "200", "-data", smallData(t), "-checkpoint-dir", filepath.Join(dir, "ckpt"), "-summary", "", "-checkpoint", "")
	grpcAddr, gossip := j.listening(t)
	metricsAddr := j.metricsAddrs()["coordinator"]
	if metricsAddr == "" {
		t.Fatalf("the coordinator logged no metrics address:\n%s", strings.Join(j.all, "\n"))
	}
	var workers []*exec.Cmd
	for i := 0; i < 2; i++ {
		workers = append(workers, startWorker(t, fmt.Sprintf("w-%d", i), grpcAddr, gossip))
	}
	waitUntil(t, "an evaluated epoch", 2*time.Minute, func() bool {
		page := scrape(t, metricsAddr)
		return page != "" && !strings.Contains(page, "ringtrain_test_accuracy 0\n")
	})
	page := scrape(t, metricsAddr)
	for _, m := range []string{"ringtrain_steps_total", "ringtrain_samples_per_second", "ringtrain_loss", "ringtrain_test_accuracy",
		"ringtrain_membership_size 2", "ringtrain_rollbacks_total 0", "ringtrain_recovery_seconds_count 0"} {
		if !strings.Contains(page, m) {
			t.Errorf("coordinator /metrics lacks %q", m)
		}
	}
	if err := j.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sawStopping := false
	waitUntil(t, "the coordinator to stop serving", 30*time.Second, func() bool {
		st, err := health(grpcAddr)
		sawStopping = sawStopping || (err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING)
		return err != nil
	})
	if !sawStopping {
		t.Log("the coordinator stopped before a health check saw NOT_SERVING")
	}
	err, took := j.wait(t, 30*time.Second)
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != 3 {
		t.Fatalf("coordinator exit %v, want status 3", err)
	}
	if took > 10*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "ckpt", "ckpt-*.ckpt"))
	if len(files) == 0 {
		t.Fatal("no checkpoint written at shutdown")
	}
	for i, w := range workers {
		if w.ProcessState != nil {
			t.Fatalf("worker %d exited with the coordinator", i)
		}
	}
}
