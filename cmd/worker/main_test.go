package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringtrain/internal/testmain"
)

// runAsWorker, set in the environment, makes the test binary run this
// command's main: the tests start the worker without building it.
const runAsWorker = "RINGTRAIN_TEST_RUN_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(runAsWorker) == "1" {
		main()
	}
	testmain.Run(m)
}

// workerCommand is this command, run by the test binary, with args.
func workerCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsWorker+"=1")
	return cmd
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestWaitingWorkerProcess runs the worker binary with no coordinator: its
// first words say what it waits for and where, within seconds; SIGTERM
// ends it at once with status 0, Ctrl-C (SIGINT) with status 130, neither
// with a warning or an error.
func TestWaitingWorkerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the worker command")
	}
	for _, tc := range []struct {
		sig  os.Signal
		code int
	}{{syscall.SIGTERM, 0}, {os.Interrupt, 130}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			addr := closedAddr(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := workerCommand(ctx, "-coordinator", addr, "-listen", "127.0.0.1:0",
				"-gossip-listen", "127.0.0.1:0", "-metrics-listen", "-", "-id", "w-test")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan string, 100)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
				io.Copy(io.Discard, stderr)
			}()
			var log []string
			deadline := time.After(20 * time.Second) // before, the first word came after 60 s
			for waiting := false; !waiting; {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("the worker exited before saying it waits: %q", log)
					}
					log = append(log, l)
					waiting = strings.Contains(l, "waiting for the coordinator at "+addr)
				case <-deadline:
					t.Fatalf("no word of waiting for the coordinator within 20s: %q", log)
				}
			}
			sent := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			for l := range lines {
				log = append(log, l)
			}
			err = cmd.Wait()
			took := time.Since(sent)
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || took > 10*time.Second {
				t.Errorf("exit status %d after %v, want %d within 10s", code, took.Round(time.Millisecond), tc.code)
			}
			for _, l := range log {
				if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
					t.Errorf("warning or error: %s", l)
				}
			}
		})
	}
}
