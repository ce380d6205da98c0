package coordinator

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"

	"ringtrain/internal/rpc"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// localWorkers are worker processes this coordinator started on its own
// machine. They die with it: on Linux the kernel kills them if the
// coordinator dies, and stop ends them otherwise.
type localWorkers struct {
	procs []*exec.Cmd
	names []string
	wg    sync.WaitGroup
	log   *slog.Logger
}

// stopGrace is how long local workers get to exit after SIGTERM.
const stopGrace = 5 * time.Second

// startLocalWorkers starts cfg.LocalWorkers processes that join addr, and
// reports each one's exit as an event. Their output goes to stderr, each
// line prefixed with the worker's name.
func startLocalWorkers(cfg Config, addr, gossip string, events chan<- event, log *slog.Logger) (*localWorkers, error) {
	command := cfg.WorkerCommand
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("coordinator: cannot find this executable to start workers: %w", err)
		}
		command = []string{exe, "worker"}
	}
	lw := &localWorkers{log: log}
	workerLog := cfg.WorkerLog
	if workerLog == nil {
		workerLog = os.Stderr
	}
	// Split the cores between the workers unless the user chose.
	procsEach := max(1, runtime.NumCPU()/cfg.LocalWorkers)
	for i := 0; i < cfg.LocalWorkers; i++ {
		name := fmt.Sprintf("local-%d", i)
		args := append(append(append([]string{}, command[1:]...), cfg.WorkerArgs...), "-coordinator", addr, "-listen", "127.0.0.1:0", "-id", name,
			"-join", gossip, "-gossip-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0")
		if cfg.ProbeInterval > 0 {
			args = append(args, "-probe-interval", cfg.ProbeInterval.String())
		}
		if cfg.ProbeTimeout > 0 {
			args = append(args, "-probe-timeout", cfg.ProbeTimeout.String())
		}
		cmd := exec.Command(command[0], args...)
		cmd.Env = append(os.Environ(), securityEnv(cfg.Security)...)
		if os.Getenv("GOMAXPROCS") == "" {
			cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(procsEach))
		}
		out := &prefixWriter{w: workerLog, prefix: []byte("[" + name + "] ")}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = childProcAttr()
		if err := cmd.Start(); err != nil {
			lw.stop()
			return nil, fmt.Errorf("coordinator: start %s: %w", name, err)
		}
		log.Info("started local worker", "worker", name, "pid", cmd.Process.Pid)
		lw.procs = append(lw.procs, cmd)
		lw.names = append(lw.names, name)
		lw.wg.Add(1)
		go func() {
			defer lw.wg.Done()
			err := cmd.Wait()
			if err == nil {
				err = fmt.Errorf("exit status 0")
			}
			select {
			case events <- exited{id: name, pid: cmd.Process.Pid, err: err}:
			default: // the job is over and nobody listens
			}
		}()
	}
	return lw, nil
}

func (lw *localWorkers) ids() []string { return lw.names }

// stop gives the workers stopGrace to exit on their own (they do once told
// the job is over), then asks those still running to exit (SIGTERM), kills
// what remains after another stopGrace, and waits for all.
func (lw *localWorkers) stop() {
	done := make(chan struct{})
	go func() {
		lw.wg.Wait()
		close(done)
	}()
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		select {
		case <-done:
			return
		case <-time.After(stopGrace):
		}
		for _, p := range lw.procs {
			p.Process.Signal(sig) // fails harmlessly for exited ones
		}
	}
	<-done
}

// prefixWriter copies whole lines to w, each behind prefix. It is safe for
// concurrent use.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		line := append(append([]byte{}, p.prefix...), p.buf[:i+1]...)
		if _, err := p.w.Write(line); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// securityEnv passes the coordinator's credentials to local workers through
// their environment (not their command line, which any user can read).
func securityEnv(s rpc.Security) []string {
	var env []string
	for name, v := range map[string]string{"TLS_CERT": s.CertFile, "TLS_KEY": s.KeyFile, "TLS_CA": s.CAFile,
		"TLS_SERVER_NAME": s.ServerName, "TOKEN": s.Token, "GOSSIP_KEY": s.GossipKey} {
		if v != "" {
			env = append(env, "RINGTRAIN_"+name+"="+v)
		}
	}
	return env
}
