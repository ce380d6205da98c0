package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// composeCommand returns the command that runs Docker Compose: the docker
// CLI's plugin (v2) where it is installed, docker-compose (v1) otherwise.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Skip("no Docker Compose (neither docker compose nor docker-compose): compose test skipped")
	return nil
}

// TestComposeRunsAJob runs the README's docker compose up --scale worker=4
// on compose.yaml (with a short job): the command returns when training
// ends, every container has exited 0, and the summary and the final
// checkpoint are on the volume.
func TestComposeRunsAJob(t *testing.T) {
	t.Parallel()
	needImage(t)
	compose := composeCommand(t)
	project := fmt.Sprintf("ringtrain-test-%d-compose", os.Getpid())
	run := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		args = append(append(compose[1:], "-p", project, "-f", "compose.yaml"), args...)
		cmd := exec.CommandContext(ctx, compose[0], args...)
		cmd.Env = append(os.Environ(), "RINGTRAIN_IMAGE="+image, "RINGTRAIN_EPOCHS=1", "RINGTRAIN_CHECKPOINT_EVERY=100")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail(string(out), 40))
		}
		return string(out), nil
	}
	t.Cleanup(func() {
		if _, err := run(2*time.Minute, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
			t.Error(err)
		}
	})
	start := time.Now()
	if _, err := run(5*time.Minute, "up", "--no-build", "--scale", "worker=4"); err != nil {
		t.Fatal(err)
	}
	t.Logf("up returned after %v", time.Since(start).Round(time.Second))
	out := mustDocker(t, "ps", "-a", "--filter", "label=com.docker.compose.project="+project,
		"--format", `{{.Names}} {{.Label "com.docker.compose.service"}} {{.State}} {{.Status}}`)
	var coordinator string
	lines := strings.Split(out, "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 || f[2] != "exited" || !strings.HasPrefix(strings.Join(f[3:], " "), "Exited (0)") {
			t.Errorf("container %q did not exit 0", l)
			continue
		}
		if f[1] == "coordinator" {
			coordinator = f[0]
		}
	}
	if len(lines) != 5 || coordinator == "" {
		t.Fatalf("containers:\n%s\nwant the coordinator and 4 workers", out)
	}
	k := &container{c: &cluster{t: t}, name: coordinator}
	s := k.summary(outDir + "/summary.json")
	t.Logf("summary: %d workers, %d steps, accuracy %.4f", s.Workers, s.Steps, s.TestAccuracy)
	if s.Workers != 4 || s.Steps != 60000/(4*32) || s.TestAccuracy < 0.85 {
		t.Fatalf("summary %+v: want one epoch on 4 workers at batch 32, accuracy ≥ 0.85", s)
	}
	if ckpt := k.readFile(outDir + "/final.ckpt"); len(ckpt) == 0 {
		t.Fatal("empty final checkpoint")
	}
	// The worker containers share a tmpfs at /dev/shm: their frames go
	// through shared memory, not the network.
	logs, err := run(time.Minute, "logs", "--no-color", "worker")
	if err != nil {
		t.Fatal(err)
	}
	if planes := strings.Count(logs, `"data_plane":"shared memory"`); planes != 4 {
		t.Errorf("%d of 4 workers formed their ring over shared memory; their logs (%d bytes) end:\n%s", planes, len(logs), tail(logs, 20))
	}
}
