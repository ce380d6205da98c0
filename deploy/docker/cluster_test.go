package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// outDir is where the coordinator writes its checkpoints, final checkpoint
// and summary: the nonroot user's home, on a named volume. A new volume
// mounted there takes the directory's owner (uid 65532) from the image, so
// the non-root, read-only container can write to it; Kubernetes does the
// same with fsGroup.
const outDir = "/home/nonroot"

// hardened are the settings of every container, those of the Kubernetes
// manifests' pods: read-only root file system, the image's non-root user,
// no capabilities, no privilege escalation.
var hardened = []string{"--read-only", "--user", "65532:65532", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"}

// cluster is one test's job: a user-defined bridge network, a named volume
// for the coordinator's outputs, and the containers on them. The
// coordinator has the network alias ringtrain-coordinator and every worker
// ringtrain-workers (Docker's DNS answers an alias with every container
// that has it, as a headless Service does); the workers find the
// coordinator and each other by gossiping with those names.
type cluster struct {
	t    *testing.T
	name string   // of the network and the volume, and the containers' prefix
	made []string // the kinds made under name: network, volume
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	needImage(t)
	c := &cluster{t: t, name: fmt.Sprintf("ringtrain-test-%d-%d", os.Getpid(), clusterSeq.Add(1))}
	t.Cleanup(c.remove)
	for _, kind := range []string{"network", "volume"} {
		mustDocker(t, kind, "create", "--label", c.pidLabel(), "--label", c.label(), c.name)
		c.made = append(c.made, kind)
	}
	return c
}

func (c *cluster) pidLabel() string { return fmt.Sprintf("%s=%d", pidLabel, os.Getpid()) }
func (c *cluster) label() string    { return "ringtrain.test.cluster=" + c.name }

// remove removes the cluster's containers (with their logs, when the test
// failed), network and volume.
func (c *cluster) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := dockerCmd(ctx, "ps", "-a", "--filter", "label="+c.label(), "--format", "{{.Names}}")
	if err != nil {
		c.t.Error(err)
	}
	names := strings.Fields(out)
	if c.t.Failed() {
		for _, n := range names {
			logs, _ := exec.CommandContext(ctx, "docker", "logs", "--tail", "30", n).CombinedOutput()
			c.t.Logf("last lines of %s:\n%s", n, logs)
		}
	}
	if len(names) > 0 {
		if _, err := dockerCmd(ctx, append([]string{"rm", "-f", "-v"}, names...)...); err != nil {
			c.t.Error(err)
		}
	}
	for _, kind := range c.made {
		if err := removeResource(ctx, kind, c.name); err != nil {
			c.t.Error(err)
		}
	}
}

// removeResource removes the cluster's network or volume. The daemon can
// refuse a network whose containers it has just removed ("has active
// endpoints": it releases their endpoints after answering docker rm, and
// later still for a container once disconnected and connected again);
// such a network's leftover endpoints are disconnected by force and the
// removal tried again, for at most ten seconds.
func removeResource(ctx context.Context, kind, name string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := dockerCmd(ctx, kind, "rm", name)
		if err == nil || kind != "network" || !strings.Contains(err.Error(), "active endpoints") || time.Now().After(deadline) {
			return err
		}
		out, _ := dockerCmd(ctx, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", name)
		for _, endpoint := range strings.Fields(out) {
			dockerCmd(ctx, "network", "disconnect", "-f", name, endpoint)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// container is one container of a cluster.
type container struct {
	c    *cluster
	name string // the container's name; its host name and job ID are the part after the cluster's prefix
	id   string
}

// start runs a hardened container on the cluster's network.
func (c *cluster) start(name, alias string, opts []string, args ...string) *container {
	c.t.Helper()
	k, err := c.run(name, alias, opts, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return k
}

// run is start without failing the test: it may run on any goroutine.
func (c *cluster) run(name, alias string, opts []string, args ...string) (*container, error) {
	full := c.name + "-" + name
	run := []string{"run", "-d", "--name", full, "--hostname", name, "--network", c.name, "--network-alias", alias,
		"--label", c.pidLabel(), "--label", c.label()}
	run = append(append(append(run, hardened...), opts...), image)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := dockerCmd(ctx, append(run, args...)...)
	if err != nil {
		return nil, err
	}
	return &container{c: c, name: full, id: strings.TrimSpace(id)}, nil
}

// coordinator starts the coordinator, its outputs on the cluster's volume.
func (c *cluster) coordinator(args ...string) *container {
	c.t.Helper()
	k, err := c.runCoordinator(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return k
}

// runCoordinator is coordinator without failing the test: it may run on
// any goroutine.
func (c *cluster) runCoordinator(args ...string) (*container, error) {
	base := []string{"-listen", ":7070", "-gossip-listen", ":7946", "-metrics-listen", "-",
		"-checkpoint-dir", outDir + "/ckpt", "-summary", outDir + "/summary.json", "-checkpoint", outDir + "/final.ckpt"}
	return c.run("coordinator", "ringtrain-coordinator", []string{"-v", c.name + ":" + outDir}, append(base, args...)...)
}

// gatedJob starts the coordinator with args and n gated workers
// (gatedWorkers), all at once.
func (c *cluster) gatedJob(n int, args ...string) (*container, map[string]*container) {
	c.t.Helper()
	var coord *container
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		coord, err = c.runCoordinator(args...)
	}()
	defer func() { <-done }() // also when gatedWorkers fails the test
	ws := c.gatedWorkers(n)
	<-done
	if err != nil {
		c.t.Fatal(err)
	}
	return coord, ws
}

// worker starts a worker configured as the Kubernetes pods are: its name
// and the gossip seeds (the two DNS aliases) in the environment.
func (c *cluster) worker(name string) *container {
	c.t.Helper()
	return c.start(name, "ringtrain-workers", workerOpts(name))
}

func workerOpts(name string) []string {
	return []string{"--entrypoint", "/usr/local/bin/worker",
		"-e", "RINGTRAIN_ID=" + name, "-e", "RINGTRAIN_JOIN=ringtrain-workers,ringtrain-coordinator",
		"-e", "RINGTRAIN_RECONNECT_TIMEOUT=2m"}
}

// workers starts n workers, w-0 to w-(n-1), all at once (docker run
// takes a second or more on a loaded machine).
func (c *cluster) workers(n int) map[string]*container {
	c.t.Helper()
	return c.startWorkers(n, nil)
}

// gateCPUs is the CPU quota of gated workers: it bounds the ring's speed
// from above whatever else runs on the machine (about 17 deterministic
// steps a second of four gated workers, idle or loaded), so that a test
// that waits for the first checkpoint (step 50) and then acts has half a
// minute before the job's last step (600), where four ungated workers ran
// 250 steps a second on a quiet machine and a starved coordinator logged
// its first checkpoint thousands of steps late. The test lifts the gate
// (ungate) once training can no longer end before what it checks: the
// ring stalled by the kill, stop or cut it made, the joiner assigned a
// rank.
const gateCPUs = "0.05"

// gatedWorkers starts n workers as workers does, each held to gateCPUs.
func (c *cluster) gatedWorkers(n int) map[string]*container {
	c.t.Helper()
	return c.startWorkers(n, []string{"--cpus", gateCPUs})
}

// ungate lifts the gate of the named workers: a quota of every CPU. A
// worker that has already exited (a fast machine can finish the job at
// gateCPUs before the test lifts the gate) has no gate left to lift; the
// test's own assertions then judge the job.
func (c *cluster) ungate(ws map[string]*container, names ...string) {
	c.t.Helper()
	for {
		args := []string{"update", "--cpus", strconv.Itoa(runtime.NumCPU())}
		for _, n := range names {
			args = append(args, ws[n].name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := dockerCmd(ctx, args...)
		cancel()
		if err == nil {
			return
		}
		// docker update goes on past a container it cannot update: update
		// again those still running, if one of them was refused.
		var running []string
		for n, st := range c.states(pick(ws, names...)) {
			if st.Running {
				running = append(running, n)
			}
		}
		if len(running) == len(names) {
			c.t.Fatal(err)
		}
		if len(running) == 0 {
			return
		}
		names = running
	}
}

func (c *cluster) startWorkers(n int, opts []string) map[string]*container {
	c.t.Helper()
	started := make([]*container, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("w-%d", i)
			started[i], errs[i] = c.run(name, "ringtrain-workers", append(workerOpts(name), opts...))
		}()
	}
	wg.Wait()
	ws := map[string]*container{}
	for i, k := range started {
		if errs[i] != nil {
			c.t.Fatal(errs[i])
		}
		ws[fmt.Sprintf("w-%d", i)] = k
	}
	return ws
}

// state is what docker inspect tells of a container.
type state struct {
	ID           string
	Running      bool
	ExitCode     int
	RestartCount int
	StartedAt    string
}

func (k *container) state() state {
	k.c.t.Helper()
	return k.c.states(map[string]*container{k.name: k})[k.name]
}

// states inspects the containers ks with one docker inspect and returns
// their states under the same keys.
func (c *cluster) states(ks map[string]*container) map[string]state {
	c.t.Helper()
	keys := slices.Sorted(maps.Keys(ks))
	args := []string{"inspect", "-f", "{{.Id}} {{.State.Running}} {{.State.ExitCode}} {{.RestartCount}} {{.State.StartedAt}}"}
	for _, key := range keys {
		args = append(args, ks[key].name)
	}
	out := mustDocker(c.t, args...)
	lines := strings.Split(out, "\n")
	if len(lines) != len(keys) {
		c.t.Fatalf("docker %s: %q", strings.Join(args, " "), out)
	}
	sts := map[string]state{}
	for i, key := range keys {
		f := strings.Fields(lines[i])
		if len(f) != 5 {
			c.t.Fatalf("inspect %s: %q", ks[key].name, lines[i])
		}
		code, _ := strconv.Atoi(f[2])
		restarts, _ := strconv.Atoi(f[3])
		sts[key] = state{ID: f[0], Running: f[1] == "true", ExitCode: code, RestartCount: restarts, StartedAt: f[4]}
	}
	return sts
}

// pick returns the named containers of ws.
func pick(ws map[string]*container, names ...string) map[string]*container {
	ks := map[string]*container{}
	for _, n := range names {
		ks[n] = ws[n]
	}
	return ks
}

// wait waits for the container to exit and returns its exit status.
func (k *container) wait(timeout time.Duration) int {
	k.c.t.Helper()
	return k.c.wait(timeout, map[string]*container{k.name: k})[k.name]
}

// wait waits, with one docker wait, for the containers ks to exit and
// returns their exit statuses under the same keys.
func (c *cluster) wait(timeout time.Duration, ks map[string]*container) map[string]int {
	c.t.Helper()
	keys := slices.Sorted(maps.Keys(ks))
	args := []string{"wait"}
	for _, key := range keys {
		args = append(args, ks[key].name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := dockerCmd(ctx, args...)
	if err != nil {
		c.t.Fatalf("%s still running after %v: %v", strings.Join(args[1:], ", "), timeout, err)
	}
	f := strings.Fields(out)
	if len(f) != len(keys) {
		c.t.Fatalf("docker %s: %q", strings.Join(args, " "), out)
	}
	codes := map[string]int{}
	for i, key := range keys {
		code, err := strconv.Atoi(f[i])
		if err != nil {
			c.t.Fatalf("docker wait %s: %q", ks[key].name, f[i])
		}
		codes[key] = code
	}
	return codes
}

// readFile copies a file out of the container (running or not, from its
// volume too) with docker cp.
func (k *container) readFile(path string) []byte {
	k.c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data, err := copyOut(ctx, k.name, path)
	if err != nil {
		k.c.t.Fatal(err)
	}
	return data
}

// copyOut returns a file of the named container, read with docker cp.
func copyOut(ctx context.Context, name, path string) ([]byte, error) {
	out, err := dockerCmd(ctx, "cp", name+":"+path, "-")
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(strings.NewReader(out))
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("docker cp %s:%s: %w", name, path, err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, fmt.Errorf("docker cp %s:%s: %w", name, path, err)
	}
	return data, nil
}

// logs follows a container's output (standard error, where the commands
// log JSON lines, and standard output) from since (RFC 3339; empty: from
// the start).
type logs struct {
	name  string
	lines chan string
	all   []string
}

func (k *container) follow(since string) *logs {
	k.c.t.Helper()
	args := []string{"logs", "-f"}
	if since != "" {
		args = append(args, "--since", since)
	}
	cmd := exec.Command("docker", append(args, k.name)...)
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		k.c.t.Fatal(err)
	}
	l := &logs{name: k.name, lines: make(chan string, 1<<16)}
	go func() {
		cmd.Wait()
		w.Close()
	}()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
		close(l.lines)
	}()
	k.c.t.Cleanup(func() { cmd.Process.Kill() })
	return l
}

// waitFor reads lines until one contains every one of subs, and returns it.
func (l *logs) waitFor(t *testing.T, timeout time.Duration, subs ...string) string {
	t.Helper()
	return l.waitUntil(t, timeout, fmt.Sprintf("%q", subs), func(line string) bool {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				return false
			}
		}
		return true
	})
}

// waitUntil reads lines until match holds for one, and returns it.
func (l *logs) waitUntil(t *testing.T, timeout time.Duration, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				t.Fatalf("%s ended before logging %s:\n%s", l.name, what, tail(strings.Join(l.all, "\n"), 60))
			}
			l.all = append(l.all, line)
			if match(line) {
				return line
			}
		case <-deadline:
			t.Fatalf("%s logged no %s within %v:\n%s", l.name, what, timeout, tail(strings.Join(l.all, "\n"), 60))
		}
	}
}

// summary is the part of the coordinator's JSON summary the tests read.
type summary struct {
	Workers           int               `json:"workers"`
	StartWorkers      int               `json:"start_workers"`
	Steps             int               `json:"steps"`
	TestAccuracy      float64           `json:"test_accuracy"`
	WeightsSHA256     string            `json:"weights_sha256"`
	Rings             int               `json:"rings"`
	Rollbacks         int               `json:"rollbacks"`
	WorkerSteps       map[string]uint64 `json:"worker_steps"`
	ResumedFrom       uint64            `json:"resumed_from"`
	MembershipChanges []struct {
		Kind, Worker, Cause string
		Step                uint64
	} `json:"membership_changes"`
}

func (k *container) summary(path string) summary {
	k.c.t.Helper()
	s, err := decodeSummary(k.readFile(path))
	if err != nil {
		k.c.t.Fatalf("summary %s: %v", path, err)
	}
	return s
}

// decodeSummary decodes a JSON summary.
func decodeSummary(data []byte) (summary, error) {
	var s summary
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return summary{}, fmt.Errorf("%w\n%s", err, data)
	}
	return s, nil
}

// changed reports whether the summary records a membership change of kind
// for worker.
func (s summary) changed(kind, worker string) bool {
	for _, c := range s.MembershipChanges {
		if c.Kind == kind && c.Worker == worker {
			return true
		}
	}
	return false
}

// finish waits for the coordinator to exit 0 and returns the summary.
func (k *container) finish(timeout time.Duration) summary {
	k.c.t.Helper()
	if code := k.wait(timeout); code != 0 {
		logs, _ := exec.Command("docker", "logs", "--tail", "40", k.name).CombinedOutput()
		k.c.t.Fatalf("coordinator exit status %d:\n%s", code, logs)
	}
	return k.summary(outDir + "/summary.json")
}
