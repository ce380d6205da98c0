package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSharedMemoryMatchesTCP trains the same job on three local worker
// processes twice: with their default data plane, where neighbours on one
// host pass their frames through shared memory, and with
// RINGTRAIN_SHARED_MEMORY=false, where they go over loopback TCP. Every
// worker must say which it used, and both runs must end with the same
// weights: the transport moves the bytes, it never changes the sums.
func TestSharedMemoryMatchesTCP(t *testing.T) {
	t.Parallel()
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err != nil || fs.Bavail*uint64(fs.Bsize) < 64<<20 {
		t.Skipf("/dev/shm missing or with under 64 MiB free (%v): the workers could not map their rings", err)
	}
	run := func(env []string) (sha string, planes map[string]string) {
		path := filepath.Join(t.TempDir(), "summary.json")
		j := startJobEnv(t, env, "-local-workers", "3", "-batch", "32", "-max-steps", "120", "-seed", "5",
			"-data", smallData(t), "-summary", path, "-checkpoint", "")
		if err, _ := j.wait(t, 5*time.Minute); err != nil {
			t.Fatalf("coordinator: %v\n%s", err, strings.Join(j.all, "\n"))
		}
		planes = map[string]string{}
		for _, line := range j.all {
			_, line, ok := strings.Cut(line, "] ")
			var e struct {
				Msg, Worker string
				DataPlane   string `json:"data_plane"`
			}
			if ok && json.Unmarshal([]byte(line), &e) == nil && e.Msg == "ring formed" {
				planes[e.Worker] = e.DataPlane
			}
		}
		return readSummary(t, path).WeightsSHA256, planes
	}
	shmSHA, shmPlanes := run(nil)
	tcpSHA, tcpPlanes := run([]string{"RINGTRAIN_SHARED_MEMORY=false"})
	for _, w := range []string{"local-0", "local-1", "local-2"} {
		if shmPlanes[w] != "shared memory" || tcpPlanes[w] != "tcp" {
			t.Errorf("%s: data plane %q by default, %q without shared memory; want %q and %q",
				w, shmPlanes[w], tcpPlanes[w], "shared memory", "tcp")
		}
	}
	if shmSHA == "" || shmSHA != tcpSHA {
		t.Fatalf("weights %q through shared memory, %q over TCP: want the same", shmSHA, tcpSHA)
	}
}
