package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// detArgs are the settings of every job here: deterministic, so that a
// ring of containers, disturbed or not, must end with the weights of the
// same job run as local processes; 300 steps (about 1.5 s of a quiet
// 2-core machine), checkpoints every checkpointEvery steps, the first of
// which tells a test that training is under way. A test that disturbs
// the job runs gated workers (gatedWorkers), so that the job cannot reach
// its last step before the disturbance has stalled the ring, however fast
// or loaded the machine: the 275 steps after the first checkpoint take
// gated workers 16 s or more, where a test's disturbance landed within 81
// steps of that checkpoint beside a load average of 26.
var detArgs = []string{"-batch", "24", "-max-steps", "300", "-epochs", "10", "-seed", "11", "-deterministic",
	"-checkpoint-every", strconv.Itoa(checkpointEvery)}

const checkpointEvery = 25

const jobTimeout = 4 * time.Minute

// The jobs run in parallel (all at once: TestMain's parallel), each on its
// network of its own, so that one's training overlaps another's container
// starts, gated steps and removals; TestDisconnectedWorkerIsNamed runs
// alone until it has timed the failure it causes.

// ref is the job run as local processes, which the tests compare their
// weights with: it runs once per test run, in the background from the
// first test that asks for it (startReference), while the tests' own
// jobs start and train.
var ref struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{} // closed once sum or err is set
	sum    summary
	err    error
}

// startReference starts the job as local processes unless a test has.
func startReference(t *testing.T) {
	t.Helper()
	needImage(t)
	ref.mu.Lock()
	defer ref.mu.Unlock()
	if ref.done != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	ref.cancel, ref.done = cancel, make(chan struct{})
	go func() {
		defer close(ref.done)
		defer cancel()
		ref.sum, ref.err = runReference(ctx)
	}()
}

// reference returns the summary of the job run as local processes,
// waiting for it to finish.
func reference(t *testing.T) summary {
	t.Helper()
	startReference(t)
	ref.mu.Lock()
	done := ref.done
	ref.mu.Unlock()
	<-done
	if ref.err != nil {
		t.Fatal(ref.err)
	}
	return ref.sum
}

// stopReference stops the job as local processes if it still runs, and
// waits for it: TestMain calls it once the tests are over.
func stopReference() {
	ref.mu.Lock()
	cancel, done := ref.cancel, ref.done
	ref.mu.Unlock()
	if done != nil {
		cancel()
		<-done
	}
}

// runReference runs the coordinator with -local-workers 4 in one
// container of the same image, hardened as the others, and returns its
// summary. The container (and its anonymous volume) stays until TestMain's
// sweep at the end of the run: a removal now could fall in the window that
// TestDisconnectedWorkerIsNamed times.
func runReference(ctx context.Context) (summary, error) {
	name := fmt.Sprintf("ringtrain-test-%d-local", os.Getpid())
	args := append([]string{"run", "-d", "--name", name, "--label", fmt.Sprintf("%s=%d", pidLabel, os.Getpid()),
		"--network", "none", "-v", outDir}, hardened...)
	args = append(append(args, image, "-local-workers", "4", "-metrics-listen", "-", "-checkpoint-dir", outDir+"/ckpt",
		"-summary", outDir+"/summary.json", "-checkpoint", ""), detArgs...)
	if _, err := dockerCmd(ctx, args...); err != nil {
		return summary{}, fmt.Errorf("the local-process job: %w", err)
	}
	out, err := dockerCmd(ctx, "wait", name)
	if err != nil {
		return summary{}, fmt.Errorf("the local-process job: %w", err)
	}
	if code := strings.TrimSpace(out); code != "0" {
		logs, _ := exec.CommandContext(ctx, "docker", "logs", "--tail", "40", name).CombinedOutput()
		return summary{}, fmt.Errorf("the local-process job exited with status %s:\n%s", code, logs)
	}
	data, err := copyOut(ctx, name, outDir+"/summary.json")
	if err != nil {
		return summary{}, fmt.Errorf("the local-process job: %w", err)
	}
	s, err := decodeSummary(data)
	if err != nil {
		return summary{}, fmt.Errorf("the local-process job's summary: %w", err)
	}
	return s, nil
}

// sameWeights fails the test unless s ends with the reference's weights
// after the same number of steps.
func sameWeights(t *testing.T, s, want summary) {
	t.Helper()
	if s.Steps != want.Steps || s.WeightsSHA256 != want.WeightsSHA256 {
		t.Fatalf("%d steps, weights %s; the local processes: %d steps, weights %s", s.Steps, s.WeightsSHA256, want.Steps, want.WeightsSHA256)
	}
}

// released waits for each worker to exit 0 (the coordinator released it).
func (c *cluster) released(ws map[string]*container, names ...string) {
	c.t.Helper()
	for n, code := range c.wait(time.Minute, pick(ws, names...)) {
		if code != 0 {
			c.t.Errorf("worker %s exit status %d, want 0", n, code)
		}
	}
}

// TestSameWeightsAsLocalProcesses runs the coordinator and four worker
// containers, hardened as the Kubernetes pods are, which find each other
// through the network aliases: the job trains to the weights of the same
// job run as local processes, every container exits 0, the summary and the
// final checkpoint are on the volume, and nothing was written anywhere
// else.
func TestSameWeightsAsLocalProcesses(t *testing.T) {
	t.Parallel()
	startReference(t)
	c := newCluster(t)
	// The workers start first, as pods may: they find the coordinator
	// once it is up.
	ws := c.workers(4)
	coord := c.coordinator(append([]string{"-workers", "4"}, detArgs...)...)
	want := reference(t) // while the job trains
	s := coord.finish(jobTimeout)
	t.Logf("containers: %d steps, accuracy %.4f, weights %s; local processes: %s", s.Steps, s.TestAccuracy, s.WeightsSHA256, want.WeightsSHA256)
	sameWeights(t, s, want)
	if s.Workers != 4 || len(s.WorkerSteps) != 4 || s.WorkerSteps["w-0"] != uint64(s.Steps) {
		t.Fatalf("summary %+v: want workers w-0 to w-3 computing every step", s)
	}
	c.released(ws, "w-0", "w-1", "w-2", "w-3")
	if ckpt := coord.readFile(outDir + "/final.ckpt"); len(ckpt) == 0 {
		t.Fatal("empty final checkpoint")
	}
	checkHardened(t, coord, ws["w-0"], ws["w-1"], ws["w-2"], ws["w-3"])
}

// checkHardened requires containers to have run read-only, as uid 65532,
// without capabilities or privilege escalation, and to have changed
// nothing in their file systems outside their volumes.
func checkHardened(t *testing.T, ks ...*container) {
	t.Helper()
	var got []struct {
		Name       string
		Config     struct{ User string }
		HostConfig struct {
			ReadonlyRootfs bool
			CapDrop        []string
			SecurityOpt    []string
		}
	}
	args := []string{"inspect"}
	for _, k := range ks {
		args = append(args, k.name)
	}
	if err := json.Unmarshal([]byte(mustDocker(t, args...)), &got); err != nil || len(got) != len(ks) {
		t.Fatalf("docker %s: %d containers, %v", strings.Join(args, " "), len(got), err)
	}
	for _, g := range got {
		h := g.HostConfig
		if g.Config.User != "65532:65532" || !h.ReadonlyRootfs || strings.Join(h.CapDrop, ",") != "ALL" ||
			strings.Join(h.SecurityOpt, ",") != "no-new-privileges" {
			t.Errorf("%s ran with user %q, read-only %v, dropped capabilities %v, security options %v", g.Name, g.Config.User, h.ReadonlyRootfs, h.CapDrop, h.SecurityOpt)
		}
	}
	// docker diff reads a container's layer: seconds each on a loaded
	// machine, so they run at once.
	diffs := make([]string, len(ks))
	errs := make([]error, len(ks))
	var wg sync.WaitGroup
	for i, k := range ks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			diffs[i], errs[i] = dockerCmd(ctx, "diff", k.name)
		})
	}
	wg.Wait()
	for i, k := range ks {
		if errs[i] != nil {
			t.Error(errs[i])
		} else if diff := strings.TrimSpace(diffs[i]); diff != "" {
			t.Errorf("%s changed its file system:\n%s", k.name, diff)
		}
	}
}

// TestKilledWorkerContainer kills a worker container (docker kill, SIGKILL)
// in the middle of the job: the job completes on the survivors, which keep
// running in the same containers, with the weights, hence the accuracy, of
// the undisturbed job.
func TestKilledWorkerContainer(t *testing.T) {
	t.Parallel()
	startReference(t)
	c := newCluster(t)
	coord, ws := c.gatedJob(4, append([]string{"-workers", "4"}, detArgs...)...)
	log := coord.follow("")
	survivors := []string{"w-0", "w-1", "w-3"}
	before := c.states(pick(ws, survivors...))
	log.waitFor(t, jobTimeout, `"msg":"checkpoint written"`)
	mustDocker(t, "kill", ws["w-2"].name)
	// The survivors stay gated until they are seen running after the
	// recovery: ungated, they could finish the job (and exit) before a
	// loaded machine let the test read the "recovered" line.
	log.waitFor(t, jobTimeout, `"msg":"recovered"`)
	for n, st := range c.states(pick(ws, survivors...)) {
		if !st.Running || st.ID != before[n].ID || st.StartedAt != before[n].StartedAt || st.RestartCount != 0 {
			t.Fatalf("%s after the kill: %+v, before: %+v", n, st, before[n])
		}
	}
	c.ungate(ws, survivors...)
	want := reference(t) // while the job trains
	s := coord.finish(jobTimeout)
	t.Logf("accuracy %.4f (undisturbed %.4f), rings %d, rollbacks %d, steps %v", s.TestAccuracy, want.TestAccuracy, s.Rings, s.Rollbacks, s.WorkerSteps)
	if d := math.Abs(s.TestAccuracy - want.TestAccuracy); d > 0.01 {
		t.Fatalf("accuracy %.4f, undisturbed %.4f: more than one point apart", s.TestAccuracy, want.TestAccuracy)
	}
	sameWeights(t, s, want)
	if s.Workers != 3 || !s.changed("lost", "w-2") || s.WorkerSteps["w-2"] >= uint64(s.Steps) {
		t.Fatalf("summary %+v: want w-2 lost mid-run and three workers at the end", s)
	}
	c.released(ws, survivors...)
	after := c.states(ws)
	for _, n := range survivors {
		if st := after[n]; st.ID != before[n].ID || st.StartedAt != before[n].StartedAt || st.RestartCount != 0 {
			t.Errorf("%s was restarted: %+v, before: %+v", n, st, before[n])
		}
	}
	if st := after["w-2"]; st.ExitCode != 137 {
		t.Errorf("w-2 exit status %d, want 137 (SIGKILL)", st.ExitCode)
	}
}

// TestStoppedWorkerLeaves stops a worker container (docker stop, SIGTERM):
// it leaves at a step boundary and exits 0; the job completes without a
// rollback.
func TestStoppedWorkerLeaves(t *testing.T) {
	t.Parallel()
	startReference(t)
	c := newCluster(t)
	coord, ws := c.gatedJob(4, append([]string{"-workers", "4"}, detArgs...)...)
	log := coord.follow("")
	log.waitFor(t, jobTimeout, `"msg":"checkpoint written"`)
	mustDocker(t, "stop", "-t", "60", ws["w-3"].name)
	if st := ws["w-3"].state(); st.ExitCode != 0 {
		t.Fatalf("w-3 exit status %d after SIGTERM, want 0", st.ExitCode)
	}
	c.ungate(ws, "w-0", "w-1", "w-2")
	want := reference(t) // while the job trains
	s := coord.finish(jobTimeout)
	t.Logf("rings %d, rollbacks %d, steps %v", s.Rings, s.Rollbacks, s.WorkerSteps)
	if s.Rollbacks != 0 || s.Workers != 3 || !s.changed("left", "w-3") {
		t.Fatalf("summary %+v: want w-3 to have left, without a rollback", s)
	}
	sameWeights(t, s, want)
	c.released(ws, "w-0", "w-1", "w-2")
}

// TestDisconnectedWorkerIsNamed disconnects a worker container from the
// network: when the all-reduce timeout fires, the ring fails with the
// reports of the ranks starved by it, which name its address; gossip's
// failure detection then names it as lost, and the job goes on without it
// to the undisturbed weights. It runs alone until the failure is named,
// then in parallel with the other tests: their docker commands, all at
// once, made docker network disconnect itself take up to 4 s.
func TestDisconnectedWorkerIsNamed(t *testing.T) {
	const timeout = 3 * time.Second
	c := newCluster(t)
	coord, ws := c.gatedJob(4, append([]string{"-workers", "4", "-allreduce-timeout", timeout.String()}, detArgs...)...)
	log := coord.follow("")
	log.waitFor(t, jobTimeout, `"msg":"checkpoint written"`)
	addr := ringAddr(t, log, "w-1")
	cut := time.Now()
	mustDocker(t, "network", "disconnect", c.name, ws["w-1"].name)
	disconnected := time.Since(cut)
	// No step completes without w-1 before the ring is formed again.
	c.ungate(ws, "w-0", "w-1", "w-2", "w-3")
	failed := log.waitUntil(t, time.Minute, "a failed ring naming w-1 ("+addr+")", func(l string) bool {
		return (strings.Contains(l, `"msg":"member failed"`) || strings.Contains(l, `"msg":"ring failed"`)) &&
			strings.Contains(l, `"waiting_for":"w-1"`) && strings.Contains(l, "("+addr+")")
	})
	named := time.Since(cut)
	t.Parallel()
	startReference(t) // not before: its container would share the timed window
	lost := log.waitUntil(t, time.Minute, "w-1 named as lost or straggler", func(l string) bool {
		return strings.Contains(l, `"worker":"w-1"`) && (strings.Contains(l, `"msg":"straggler"`) || strings.Contains(l, `"msg":"lost a ring member"`))
	})
	t.Logf("after the disconnection (docker network disconnect took %v): %v to a failed ring naming %s (%s); %v to w-1 named (%s)",
		disconnected.Round(time.Millisecond), named.Round(time.Millisecond), addr, failed, time.Since(cut).Round(time.Millisecond), lost)
	// The docker CLI's own latency and the coordinator's handling of the
	// reports come on top of the deadline.
	if named > timeout+2*time.Second {
		t.Errorf("the ring failed naming w-1 %v after the disconnection; the all-reduce timeout is %v", named, timeout)
	}
	want := reference(t) // while the job trains, the timed part over
	s := coord.finish(jobTimeout)
	t.Logf("rings %d, rollbacks %d, steps %v", s.Rings, s.Rollbacks, s.WorkerSteps)
	if s.Workers != 3 || s.WorkerSteps["w-1"] >= uint64(s.Steps) {
		t.Fatalf("summary %+v: want the job finished without w-1", s)
	}
	sameWeights(t, s, want)
	c.released(ws, "w-0", "w-2", "w-3")
}

// ringAddr returns the ring address a worker joined with, from the
// coordinator's log read so far.
func ringAddr(t *testing.T, l *logs, worker string) string {
	t.Helper()
	for _, line := range l.all {
		var e struct {
			Msg, Worker string
			RingAddr    string `json:"ring_addr"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "worker joined" && e.Worker == worker {
			return e.RingAddr
		}
	}
	t.Fatalf("the coordinator logged no join of %s", worker)
	return ""
}

// TestFifthWorkerJoins starts a fifth worker container in the middle of
// the job: it joins the ring at a step boundary and computes steps. The
// four first workers are gated until the coordinator has assigned w-4 a
// rank (a container took more than 10 s to start and join in a full test
// run, while four ungated workers trained up to 730 steps a second); w-4
// starts at the first checkpoint (step 25). With every test's containers
// starting at once, w-4 was assigned as late as 424 steps after the
// trigger: the job runs 1000 steps. The job is not deterministic (five
// workers' deterministic steps took three times as long). That
// deterministic weights survive joins is checked on processes, by
// TestRandomFaults' deterministic scenarios with joins.
func TestFifthWorkerJoins(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	coord, ws := c.gatedJob(4, "-workers", "4", "-max-workers", "5", "-batch", "24", "-max-steps", "1000", "-epochs", "2", "-seed", "11",
		"-checkpoint-every", strconv.Itoa(checkpointEvery))
	log := coord.follow("")
	log.waitFor(t, jobTimeout, `"msg":"checkpoint written"`)
	start := time.Now()
	ws["w-4"] = c.worker("w-4")
	log.waitFor(t, jobTimeout, `"msg":"worker joined"`, `"worker":"w-4"`)
	t.Logf("w-4 joined %v after its container started", time.Since(start).Round(time.Millisecond))
	log.waitFor(t, jobTimeout, `"msg":"assigned"`, `"worker":"w-4"`)
	c.ungate(ws, "w-0", "w-1", "w-2", "w-3")
	s := coord.finish(jobTimeout)
	t.Logf("rings %d, rollbacks %d, steps %v", s.Rings, s.Rollbacks, s.WorkerSteps)
	if s.Workers != 5 || s.Rings < 2 || s.Rollbacks != 0 || s.WorkerSteps["w-4"] == 0 {
		t.Fatalf("summary %+v: want w-4 in a second ring, computing steps, without a rollback", s)
	}
	c.released(ws, "w-0", "w-1", "w-2", "w-3", "w-4")
}

// TestCoordinatorRestartsOnItsVolume kills the coordinator container in the
// middle of the job and starts a new one on the same named volume: it
// resumes from the newest checkpoint, and the workers, in the containers
// they started in, reconnect and finish the job.
func TestCoordinatorRestartsOnItsVolume(t *testing.T) {
	t.Parallel()
	startReference(t)
	c := newCluster(t)
	args := append([]string{"-workers", "4"}, detArgs...)
	coord, ws := c.gatedJob(4, args...)
	log := coord.follow("")
	before := c.states(ws)
	log.waitFor(t, jobTimeout, `"msg":"checkpoint written"`)
	mustDocker(t, "kill", coord.name)
	coord.wait(time.Minute)
	newest := newestCheckpoint(t, coord)
	mustDocker(t, "rm", coord.name)
	coord = c.coordinator(args...)
	log = coord.follow("")
	resumed := log.waitFor(t, jobTimeout, `"msg":"resuming from checkpoint"`)
	t.Log(resumed)
	c.ungate(ws, "w-0", "w-1", "w-2", "w-3")
	want := reference(t) // while the job trains
	s := coord.finish(jobTimeout)
	t.Logf("newest checkpoint logged before the kill: step %d; resumed from step %d of %d, accuracy %.4f", newest, s.ResumedFrom, s.Steps, s.TestAccuracy)
	// A checkpoint written just before the kill may not have been logged.
	if s.ResumedFrom < newest || s.ResumedFrom%checkpointEvery != 0 || s.Workers != 4 {
		t.Fatalf("summary %+v: want a resume from the newest checkpoint (step %d or later) with the four workers", s, newest)
	}
	sameWeights(t, s, want)
	c.released(ws, "w-0", "w-1", "w-2", "w-3")
	for n, st := range c.states(ws) {
		if st.ID != before[n].ID || st.StartedAt != before[n].StartedAt || st.RestartCount != 0 {
			t.Errorf("%s was restarted: %+v, before: %+v", n, st, before[n])
		}
	}
}

// newestCheckpoint returns the step of the newest checkpoint a coordinator
// container logged as written.
func newestCheckpoint(t *testing.T, k *container) uint64 {
	t.Helper()
	out, err := exec.Command("docker", "logs", k.name).CombinedOutput()
	if err != nil {
		t.Fatalf("docker logs %s: %v", k.name, err)
	}
	var newest uint64
	for _, line := range strings.Split(string(out), "\n") {
		var e struct {
			Msg  string
			Step uint64
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "checkpoint written" {
			newest = max(newest, e.Step)
		}
	}
	if newest == 0 {
		t.Fatalf("%s logged no checkpoint", k.name)
	}
	return newest
}
