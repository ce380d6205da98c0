// Package localworkers starts a job's worker processes on the
// coordinator's own machine and stops them. The workers die with the
// coordinator: on Linux the kernel kills them if it dies, however it dies,
// and Stop ends them otherwise. Their output goes to one writer, each line
// behind the worker's name.
package localworkers

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config says which workers to start and how.
type Config struct {
	// Count is the number of workers, named local-0, local-1, ...
	Count int
	// Command starts one worker; Start appends Args, then -coordinator,
	// -listen, -id, -join, -gossip-listen and -metrics-listen (and the
	// probe flags when set). Empty means this executable's worker
	// subcommand.
	Command []string
	Args    []string
	// Coordinator is the coordinator's gRPC address and Gossip its
	// memberlist address, which the workers join.
	Coordinator, Gossip string
	// ProbeInterval and ProbeTimeout, when positive, tune the workers'
	// failure detection.
	ProbeInterval, ProbeTimeout time.Duration
	// Env is added to this process's environment for the workers (the
	// place for secrets: a command line is visible to every user).
	// GOMAXPROCS, unless set here or in the environment, splits the
	// machine's cores between the workers.
	Env []string
	// Output receives the workers' standard output and error, each line
	// behind "[name] "; nil means standard error.
	Output io.Writer
	// Grace is how long Stop waits for the workers to exit before each
	// signal (default DefaultGrace).
	Grace time.Duration
	// Logger logs each start; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultGrace is how long Stop gives the workers before SIGTERM, and
// again before SIGKILL.
const DefaultGrace = 5 * time.Second

// Exit is a worker's exit: its name, process id, and the error of its
// wait (never nil: a worker that exits with status 0 before the job's end
// has still left it).
type Exit struct {
	ID  string
	PID int
	Err error
}

// Workers are the processes Start started.
type Workers struct {
	procs []*exec.Cmd
	names []string
	grace time.Duration
	wg    sync.WaitGroup
}

// Start starts cfg.Count workers and calls exited, on a goroutine of its
// own, when each one exits; exited must not block. If a worker fails to
// start, those already started are stopped.
func Start(cfg Config, exited func(Exit)) (*Workers, error) {
	command := cfg.Command
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("localworkers: cannot find this executable to start workers: %w", err)
		}
		command = []string{exe, "worker"}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	out := cfg.Output
	if out == nil {
		out = os.Stderr
	}
	w := &Workers{grace: cfg.Grace}
	if w.grace <= 0 {
		w.grace = DefaultGrace
	}
	env := append(os.Environ(), cfg.Env...)
	if !hasVar(env, "GOMAXPROCS") {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(max(1, runtime.NumCPU()/max(cfg.Count, 1))))
	}
	for i := range cfg.Count {
		name := fmt.Sprintf("local-%d", i)
		args := append(append(append([]string{}, command[1:]...), cfg.Args...), "-coordinator", cfg.Coordinator, "-listen", "127.0.0.1:0",
			"-id", name, "-join", cfg.Gossip, "-gossip-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0")
		if cfg.ProbeInterval > 0 {
			args = append(args, "-probe-interval", cfg.ProbeInterval.String())
		}
		if cfg.ProbeTimeout > 0 {
			args = append(args, "-probe-timeout", cfg.ProbeTimeout.String())
		}
		cmd := exec.Command(command[0], args...)
		cmd.Env = env
		pw := &prefixWriter{w: out, prefix: []byte("[" + name + "] ")}
		cmd.Stdout, cmd.Stderr = pw, pw
		cmd.SysProcAttr = childProcAttr()
		if err := cmd.Start(); err != nil {
			w.Stop()
			return nil, fmt.Errorf("localworkers: start %s: %w", name, err)
		}
		log.Info("started local worker", "worker", name, "pid", cmd.Process.Pid)
		w.procs = append(w.procs, cmd)
		w.names = append(w.names, name)
		w.wg.Go(func() {
			err := cmd.Wait()
			if err == nil {
				err = fmt.Errorf("exit status 0")
			}
			exited(Exit{ID: name, PID: cmd.Process.Pid, Err: err})
		})
	}
	return w, nil
}

// hasVar reports whether env sets the variable name.
func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// IDs returns the workers' names, in the order they were started.
func (w *Workers) IDs() []string { return w.names }

// Stop gives the workers Grace to exit on their own (they do once told
// the job is over), then asks those still running to exit (SIGTERM), kills
// what remains after another Grace, and waits for all.
func (w *Workers) Stop() {
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		timer := time.NewTimer(w.grace)
		select {
		case <-done:
			timer.Stop()
			return
		case <-timer.C:
		}
		for _, p := range w.procs {
			p.Process.Signal(sig) // fails harmlessly for exited ones
		}
	}
	<-done
}
