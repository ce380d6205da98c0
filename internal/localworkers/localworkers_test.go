package localworkers

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Run(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// collect returns an exited function for Start and a way to wait for n
// exits, sorted by worker.
func collect() (func(Exit), func(n int) []Exit) {
	ch := make(chan Exit, 16)
	return func(e Exit) { ch <- e }, func(n int) []Exit {
		var out []Exit
		for range n {
			out = append(out, <-ch)
		}
		slices.SortFunc(out, func(a, b Exit) int { return strings.Compare(a.ID, b.ID) })
		return out
	}
}

// TestWorkersGetTheirFlagsAndEnvironment: each worker is started with its
// name, the coordinator's addresses and the extra environment; its output
// comes behind its name; its exit is reported with its status.
func TestWorkersGetTheirFlagsAndEnvironment(t *testing.T) {
	var out syncBuffer
	exited, wait := collect()
	w, err := Start(Config{Count: 2, Command: []string{"sh", "-c", `echo "$RINGTRAIN_SECRET $*"; exit 3`, "sh"}, Args: []string{"-log-level", "debug"},
		Coordinator: "127.0.0.1:7070", Gossip: "127.0.0.1:7946", Env: []string{"RINGTRAIN_SECRET=s3"}, Output: &out, Logger: quiet}, exited)
	if err != nil {
		t.Fatal(err)
	}
	exits := wait(2)
	w.Stop()
	if ids := w.IDs(); !slices.Equal(ids, []string{"local-0", "local-1"}) {
		t.Fatalf("IDs %v", ids)
	}
	for i, e := range exits {
		if e.ID != w.IDs()[i] || e.PID <= 0 || e.Err == nil || e.Err.Error() != "exit status 3" {
			t.Fatalf("exit %+v, want %s's exit status 3", e, w.IDs()[i])
		}
	}
	for _, id := range w.IDs() {
		want := "[" + id + "] s3 -log-level debug -coordinator 127.0.0.1:7070 -listen 127.0.0.1:0 -id " + id + " -join 127.0.0.1:7946 "
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output %q lacks %q", out.String(), want)
		}
	}
}

// TestStopEndsLingeringWorkers: Stop gives the workers the grace, then
// SIGTERM, then, for one that ignores it, SIGKILL, and returns once every
// worker has exited.
func TestStopEndsLingeringWorkers(t *testing.T) {
	for _, c := range []struct {
		script, status string
	}{
		{"exec sleep 60", "signal: terminated"},
		{"trap '' TERM; while sleep 0.01; do :; done", "signal: killed"},
	} {
		exited, wait := collect()
		w, err := Start(Config{Count: 1, Command: []string{"sh", "-c", c.script}, Grace: 50 * time.Millisecond, Logger: quiet, Output: io.Discard}, exited)
		if err != nil {
			t.Fatal(err)
		}
		w.Stop()
		if e := wait(1)[0]; e.Err == nil || e.Err.Error() != c.status {
			t.Errorf("%s: exit %+v, want %s", c.script, e, c.status)
		}
	}
}

// TestFailedStartIsNamed: a command that cannot start is an error naming
// the worker.
func TestFailedStartIsNamed(t *testing.T) {
	_, err := Start(Config{Count: 2, Command: []string{"/nonexistent/worker"}, Logger: quiet}, func(Exit) {})
	if err == nil || !strings.Contains(err.Error(), "start local-0") {
		t.Fatalf("error %v, want one naming local-0", err)
	}
}

func TestPrefixWriterKeepsLinesWhole(t *testing.T) {
	var out bytes.Buffer
	p := &prefixWriter{w: &out, prefix: []byte("[w] ")}
	for _, s := range []string{"a", "b\nc", "\n", "d"} {
		p.Write([]byte(s))
	}
	if got := out.String(); got != "[w] ab\n[w] c\n" {
		t.Fatalf("%q", got)
	}
}
