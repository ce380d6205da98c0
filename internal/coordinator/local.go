package coordinator

import (
	"fmt"
	"time"

	"ringtrain/internal/transportsec"
)

// Launcher starts a job's local workers (Cluster.LocalWorkers of them)
// once the coordinator listens. The command line starts processes on this
// machine (package localworkers); tests give fakes.
type Launcher interface {
	// Launch starts w.Count workers that join the coordinator w names and
	// calls exited, on a goroutine of its own, when each one exits; exited
	// does not block. It returns the workers' names and stop, which ends
	// them and returns once they have exited. If a worker fails to start,
	// Launch stops those it started and returns the error.
	Launch(w LocalWorkers, exited func(LocalExit)) (names []string, stop func(), err error)
}

// LocalWorkers says which local workers a Launcher starts.
type LocalWorkers struct {
	// Count is the number of workers.
	Count int
	// Coordinator is the coordinator's gRPC address and Gossip its
	// memberlist address, which the workers join.
	Coordinator, Gossip string
	// ProbeInterval and ProbeTimeout, when positive, tune the workers'
	// failure detection as they tune the coordinator's.
	ProbeInterval, ProbeTimeout time.Duration
	// Env holds the job's credentials as RINGTRAIN_* variables, for the
	// workers' environment (not their command line, which any user of
	// the machine can read).
	Env []string
}

// LocalExit is a local worker's exit: its name, process id, and why (never
// nil: a worker that exits with status 0 before the job's end has still
// left it).
type LocalExit struct {
	ID  string
	PID int
	Err error
}

// localWorkers are the workers the launcher started for this coordinator.
type localWorkers struct {
	names []string
	stop  func()
}

// startLocalWorkers launches cfg.LocalWorkers workers that join addr and
// gossip, and reports each one's exit as an event.
func startLocalWorkers(cfg Config, addr, gossip string, events chan<- event) (*localWorkers, error) {
	names, stop, err := cfg.Launcher.Launch(LocalWorkers{
		Count: cfg.LocalWorkers, Coordinator: addr, Gossip: gossip,
		ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout, Env: securityEnv(cfg.Security),
	}, func(e LocalExit) {
		select {
		case events <- exited{id: e.ID, pid: e.PID, err: e.Err}:
		default: // the job is over and nobody listens
		}
	})
	if err != nil {
		return nil, fmt.Errorf("coordinator: local workers: %w", err)
	}
	return &localWorkers{names: names, stop: stop}, nil
}

func (lw *localWorkers) ids() []string { return lw.names }

// securityEnv passes the coordinator's credentials to local workers through
// their environment (not their command line, which any user can read).
func securityEnv(s transportsec.Security) []string {
	var env []string
	for name, v := range map[string]string{"TLS_CERT": s.CertFile, "TLS_KEY": s.KeyFile, "TLS_CA": s.CAFile,
		"TLS_SERVER_NAME": s.ServerName, "TOKEN": s.Token, "GOSSIP_KEY": s.GossipKey} {
		if v != "" {
			env = append(env, "RINGTRAIN_"+name+"="+v)
		}
	}
	return env
}
