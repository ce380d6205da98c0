// Package docker holds the container tests: the repository's Dockerfile
// built on the local Docker engine (with deploy/docker/base-images.sh's
// stand-ins for base images that cannot be pulled), jobs of coordinator and
// worker containers on a user-defined bridge network, with kills, stops,
// partitions, joins and restarts, and the Compose file. Every test removes
// the containers, networks and volumes it made, even when it fails; the
// tests skip where no Docker daemon answers.
package docker

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ringtrain/internal/testmain"
)

// image is the tag the tests build the Dockerfile under. It is kept
// between runs, so that the next build reuses its layers.
const image = "ringtrain:test"

// pidLabel marks everything a test run makes with the test process's pid:
// a run removes what it made at the end, and what runs that died before
// cleaning up (a timeout's panic) left behind at the start.
const pidLabel = "ringtrain.test.pid"

var (
	noDaemon   string // why the tests skip, when no Docker daemon answers
	buildOnce  sync.Once
	buildErr   error
	clusterSeq atomic.Int32
)

// parallel is how many tests run at once unless -test.parallel says
// otherwise: every parallel test of the package. The container jobs mostly
// wait (for containers to start and stop, for gated workers, for the
// docker CLI), so more of them than GOMAXPROCS, go test's default, keep
// the cores busy; with four at a time, the last three started only as the
// first ones ended, and waited for the daemon again.
const parallel = 8

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", strconv.Itoa(parallel))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if _, err := dockerCmd(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		noDaemon = fmt.Sprintf("no Docker daemon answers (%v): container tests skipped", err)
	} else {
		sweep(ctx, func(pid int) bool { return pid != os.Getpid() && syscall.Kill(pid, 0) != nil })
	}
	cancel()
	testmain.RunWithCleanup(m, func() {
		stopReference()
		if noDaemon == "" {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			sweep(ctx, func(pid int) bool { return pid == os.Getpid() })
			cancel()
		}
	})
}

// sweep removes the containers, networks and volumes made by a test run
// whose pid gone holds: labelled with it, or of a Compose project named
// after it (ringtrain-test-PID-compose).
func sweep(ctx context.Context, gone func(pid int) bool) {
	for _, kind := range []string{"container", "network", "volume"} {
		format := `{{.Name}}|{{.Label "` + pidLabel + `"}}|{{.Label "com.docker.compose.project"}}`
		args := []string{kind, "ls", "--format", format}
		if kind == "container" {
			args = []string{"ps", "-a", "--format", strings.Replace(format, ".Name", ".Names", 1)}
		}
		out, err := dockerCmd(ctx, args...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sweep:", err)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Split(line, "|")
			if len(f) != 3 {
				continue
			}
			pid := f[1]
			if p, ok := strings.CutPrefix(f[2], "ringtrain-test-"); ok && strings.HasSuffix(p, "-compose") {
				pid = strings.TrimSuffix(p, "-compose")
			}
			n, err := strconv.Atoi(pid)
			if err != nil || !gone(n) {
				continue
			}
			rm := []string{kind, "rm", f[0]}
			if kind == "container" {
				rm = []string{"rm", "-f", "-v", f[0]}
			}
			if _, err := dockerCmd(ctx, rm...); err != nil {
				fmt.Fprintln(os.Stderr, "sweep:", err)
			}
		}
	}
}

// dockerCmd runs the docker CLI and returns its standard output; an error
// carries the command and its standard error.
func dockerCmd(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// mustDocker runs the docker CLI for at most two minutes and fails the
// test on an error.
func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := dockerCmd(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// needImage skips the test where no Docker daemon answers, and otherwise
// builds the image once per run: the base images' stand-ins where they are
// missing, then the repository's Dockerfile as it is.
func needImage(t *testing.T) {
	t.Helper()
	if noDaemon != "" {
		t.Skip(noDaemon)
	}
	buildOnce.Do(func() { buildErr = buildImage() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// buildImage makes the base images (base-images.sh pulls or makes the
// missing ones) and builds the Dockerfile, tagging its build stage
// image-build too. The previous run's images of both tags are removed once
// replaced, with the layers only they used (the legacy builder would
// otherwise keep about 1.5 GB of stale build layers per source change);
// the layers still in use, the dependencies' among them, stay as the next
// build's cache.
func buildImage() error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tags := []string{image + "-build", image}
	old := map[string]string{}
	for _, tag := range tags {
		if id, err := dockerCmd(ctx, "image", "inspect", "-f", "{{.Id}}", tag); err == nil {
			old[tag] = strings.TrimSpace(id)
		}
	}
	var out []byte
	for _, cmd := range []*exec.Cmd{
		exec.CommandContext(ctx, filepath.Join(root, "deploy/docker/base-images.sh")),
		exec.CommandContext(ctx, "docker", "build", "--force-rm", "-t", image, root),
	} {
		start := time.Now()
		if out, err = cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(string(out), 40))
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", strings.Join(cmd.Args, " "), time.Since(start).Round(time.Second))
	}
	if id := buildStage(string(out)); id != "" {
		if _, err := dockerCmd(ctx, "tag", id, tags[0]); err != nil {
			return err
		}
	}
	for _, tag := range tags {
		id, err := dockerCmd(ctx, "image", "inspect", "-f", "{{.Id}}", tag)
		if prev := old[tag]; prev != "" && err == nil && strings.TrimSpace(id) != prev {
			if _, err := dockerCmd(ctx, "rmi", prev); err != nil {
				fmt.Fprintln(os.Stderr, "removing the previous image:", err)
			}
		}
	}
	return nil
}

// buildStage returns the image the build stage ended with, from the
// legacy builder's output: the last " ---> ID" before the second FROM.
func buildStage(out string) string {
	var last string
	froms := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Step ") && strings.Contains(line, " : FROM ") {
			if froms++; froms == 2 {
				return last
			}
		}
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "---> "); ok && !strings.Contains(id, " ") {
			last = id
		}
	}
	return ""
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestImage checks the image the Dockerfile builds: at most 40 MB with
// MNIST inside, -h of both commands prints their usage and exits 0, it runs
// as uid 65532 and holds no shell.
func TestImage(t *testing.T) {
	t.Parallel()
	needImage(t)
	size, err := strconv.ParseInt(mustDocker(t, "image", "inspect", "-f", "{{.Size}}", image), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s: %.1f MB", image, float64(size)/1e6)
	if size > 40e6 {
		t.Errorf("image is %.1f MB, over the 40 MB budget", float64(size)/1e6)
	}
	if user := mustDocker(t, "image", "inspect", "-f", "{{.Config.User}}", image); user != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", user)
	}
	for _, c := range []struct{ entrypoint, usage string }{
		{"", "usage: coordinator "},
		{"/usr/local/bin/worker", "usage: worker "},
	} {
		args := []string{"run", "--rm", "--label", fmt.Sprintf("%s=%d", pidLabel, os.Getpid()), "--network", "none"}
		if c.entrypoint != "" {
			args = append(args, "--entrypoint", c.entrypoint)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, "docker", append(args, image, "-h")...).CombinedOutput()
		cancel()
		if err != nil || !strings.HasPrefix(string(out), c.usage) {
			t.Errorf("docker run %s -h (entrypoint %q): %v\n%s", image, c.entrypoint, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--label", fmt.Sprintf("%s=%d", pidLabel, os.Getpid()),
		"--network", "none", "--entrypoint", "/bin/sh", image, "-c", "true").CombinedOutput()
	if err == nil {
		t.Errorf("the image has a shell: %s", out)
	}
}
